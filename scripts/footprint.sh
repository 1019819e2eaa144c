#!/usr/bin/env bash
# Footprint of the agent next to the floor (scripts/floor: a 5-actor
# protoactor-go program doing 3 /proc reads and one JSON encode per tick, the
# least a program shaped like the agent can cost) and prometheus-node-exporter,
# all three measured in the same run on this machine, so the ratios hold even
# on a shared or slow machine where the absolute figures do not.
#
#   MODE=run   (default) all three cadences at 1 s for DURATION s (default 60)
#              against the local sink with the fake commands (testdata/fakebin,
#              testdata/proc); the floor ticks every 1 s, node_exporter is
#              scraped once a second. Prints own CPU per sample (the agent's
#              process only: the fake commands it runs are shown apart), RSS
#              at the end and peak, binary size, start-up, and the ratios.
#              This is a stress run, not idle: see MODE=idle for that.
#   MODE=idle  default cadences (30/300/1800 s) for DURATION s; the floor
#              ticks every 30 s, node_exporter is scraped every 30 s. Prints
#              RSS after DURATION s and own CPU per hour (extrapolated).
#   MODE=slope samples RSS every STEP s (default 10) after WARMUP s (default
#              120) for DURATION s (use DURATION=3600) at CADENCE (default:
#              default cadences; CADENCE=1s for all at 1 s) and prints the
#              least-squares RSS slope in kB/min of each process.
#   MODE=start STARTS times (default 5): exec -> first sample at the sink,
#              exec -> `once` exit, and the floor's exec -> first tick exit;
#              medians.
#   MODE=all   run, then idle, then start.
#
# CPU is the sum of the processes' threads' run time from
# /proc/PID/task/*/schedstat (ns), taken after a 5 s warm-up (the first round
# of every cadence), so the start-up cost is not in the per-sample figure.
# Loopback only; bounded by DURATION (+ warm-up); installs
# prometheus-node-exporter from Debian if missing.
# SPOOL=off runs the agent with a memory-only queue (no fsync per sample).
# AGENT_ENV="GOGC=50 GOMEMLIMIT=6MiB" runs the agent (only) with those
# variables, to compare GC settings against the same floor in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-run}
DURATION=${DURATION:-60}
STEP=${STEP:-10}
STARTS=${STARTS:-5}
root=$PWD
work=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() { stop_all; rm -rf "$work"; }
trap cleanup EXIT

if ! command -v prometheus-node-exporter >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq prometheus-node-exporter >/dev/null) ||
    { echo "cannot install prometheus-node-exporter"; exit 1; }
fi
NE=$(command -v prometheus-node-exporter)

# Both static and stripped, built the same way.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/proxmox-agent" ./cmd/proxmox-agent
CGO_ENABLED=0 go build -tags floor -trimpath -ldflags "-s -w" -o "$work/floor" ./scripts/floor
go build -o "$work/phoenix-sink" ./cmd/phoenix-sink

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
now_ns() { date +%s%N; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# Run time of every thread of the process, ns (threads alive now).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END {printf "%d\n", s}'; }
# cutime+cstime: children the process waited for, in clock ticks.
cpu_children() { awk '{print $16+$17}' "/proc/$1/stat"; }
# utime+stime in clock ticks: coarse, but counts threads that have exited.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 never opened"; exit 1
}

# start_sink: a fresh sink on a free port, its samples in $work/samples.ndjson.
start_sink() {
  sink_port=$(free_port)
  rm -f "$work/samples.ndjson"
  "$work/phoenix-sink" -listen "127.0.0.1:$sink_port" -token fp -out "$work/samples.ndjson" 2>/dev/null &
  pids+=($!)
  wait_port "$sink_port"
}

# write_config CADENCE: 1s (all at 1 s) or default (30/300/1800 s).
write_config() {
  cat > "$work/agent.toml" <<TOML
server_url = "ws://127.0.0.1:$sink_port/socket/websocket"
token = "fp"
host_id = "footprint"
node = "pve1"
[proc]
root = "$root/testdata/proc"
# As packaged (spool on, status socket on), but inside the work directory:
# a measurement must not touch the machine's /var/lib or /run.
[spool]
dir = "$([ "${SPOOL:-on}" = off ] || echo "$work/spool")"
[status]
socket = "$work/status.sock"
TOML
  if [ "$1" = 1s ]; then
    printf '[intervals]\nfast_seconds = 1\nmedium_seconds = 1\nslow_seconds = 1\n' >> "$work/agent.toml"
  fi
  chmod 600 "$work/agent.toml"
}

start_agent() {
  write_config "$1"
  agent_exec_ns=$(now_ns)
  env ${AGENT_ENV:-} PATH="$root/testdata/fakebin:$PATH" "$work/proxmox-agent" run --config "$work/agent.toml" --log-level warn 2>"$work/agent.log" &
  agent=$!; pids+=($agent)
}
# The floor reads the same proc root as the agent, so both pay the same reads.
start_floor() { "$work/floor" -interval "$1" -proc "$root/testdata/proc" & floor=$!; pids+=($floor); }
start_ne() {
  ne_port=$(free_port)
  "$NE" --web.listen-address="127.0.0.1:$ne_port" 2>/dev/null &
  ne=$!; pids+=($ne)
}
scrape() { curl -s -o /dev/null "http://127.0.0.1:$ne_port/metrics"; }

# first_sample_ms: exec -> received_at of the first sample at the sink.
first_sample_ms() {
  for _ in $(seq 1 200); do [ -s "$work/samples.ndjson" ] && break; sleep 0.02; done
  python3 - "$work/samples.ndjson" "$agent_exec_ns" <<'PY'
import sys, json, datetime
line = open(sys.argv[1]).readline() if __import__("os").path.exists(sys.argv[1]) else ""
if not line:
    print("nan"); sys.exit()
at = json.loads(line)["received_at"]
# RFC 3339 with up to 9 fractional digits, UTC.
base, frac = at.rstrip("Z").split(".") if "." in at else (at.rstrip("Z"), "0")
t = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.timezone.utc).timestamp()
ns = int(t) * 10**9 + int(frac.ljust(9, "0")[:9])
print(f"{(ns - int(sys.argv[2])) / 1e6:.1f}")
PY
}

# measure CADENCE FLOOR_INTERVAL SCRAPE_EVERY: runs the three side by side
# and writes key=value lines to $work/m.
measure() {
  local cadence=$1 fint=$2 every=$3
  start_sink
  start_agent "$cadence"; start_floor "$fint"; start_ne
  local first; first=$(first_sample_ms)
  sleep 5
  local a0 f0 n0 c0 k0 s0 t0 scrapes=0
  a0=$(cpu_ns $agent); f0=$(cpu_ns $floor); n0=$(cpu_ns $ne); c0=$(cpu_children $agent); k0=$(cpu_ticks $agent)
  s0=$(lines "$work/samples.ndjson"); t0=$(now_ns)
  for i in $(seq 0 $((DURATION - 1))); do
    if [ $((i % every)) -eq 0 ]; then scrape && scrapes=$((scrapes + 1)); fi
    sleep 1
  done
  local t1; t1=$(now_ns)
  cat > "$work/m" <<EOF
window_s=$(( (t1 - t0) / 1000000 ))e-3
first_sample_ms=$first
agent_cpu_ns=$(( $(cpu_ns $agent) - a0 ))
floor_cpu_ns=$(( $(cpu_ns $floor) - f0 ))
ne_cpu_ns=$(( $(cpu_ns $ne) - n0 ))
agent_children_ticks=$(( $(cpu_children $agent) - c0 ))
agent_ticks=$(( $(cpu_ticks $agent) - k0 ))
samples=$(( $(lines "$work/samples.ndjson") - s0 ))
scrapes=$scrapes
agent_rss=$(rss $agent)
floor_rss=$(rss $floor)
ne_rss=$(rss $ne)
agent_hwm=$(hwm $agent)
floor_hwm=$(hwm $floor)
ne_hwm=$(hwm $ne)
agent_size=$(stat -c %s "$work/proxmox-agent")
floor_size=$(stat -c %s "$work/floor")
ne_size=$(stat -c %s "$NE")
EOF
  stop_all
}

report() {
  python3 - "$1" "$2" "$tck" "$work/m" <<'PY'
import sys
mode, fint, tck, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
m = {k: float(v) for k, v in (l.strip().split("=", 1) for l in open(path) if "=" in l)}
w = m["window_s"]
ticks = w / fint
mib = lambda k: k / 1024
def row(name, a, f, n, fmt="{:.2f}"):
    cells = [fmt.format(a), fmt.format(f), fmt.format(n),
             f"{a / f:.2f}" if f else "-", f"{a / n:.2f}" if n else "-"]
    print(f"| {name} | " + " | ".join(cells) + " |")
print("| | proxmox-agent | floor | node_exporter | agent/floor | agent/node_exporter |")
print("|---|---|---|---|---|---|")
if mode == "run":
    a = m["agent_cpu_ns"] / 1e6 / m["samples"] if m["samples"] else float("nan")
    f = m["floor_cpu_ns"] / 1e6 / ticks
    n = m["ne_cpu_ns"] / 1e6 / m["scrapes"] if m["scrapes"] else float("nan")
    row("own CPU ms per sample / tick / scrape", a, f, n)
    row("RSS after the run (MiB)", mib(m["agent_rss"]), mib(m["floor_rss"]), mib(m["ne_rss"]))
    row("RSS peak (MiB)", mib(m["agent_hwm"]), mib(m["floor_hwm"]), mib(m["ne_hwm"]))
else:
    per_h = lambda ns: ns / 1e9 / w * 3600
    row("own CPU s per hour (extrapolated)", per_h(m["agent_cpu_ns"]), per_h(m["floor_cpu_ns"]), per_h(m["ne_cpu_ns"]))
    row(f"RSS after {w + 5:.0f} s (MiB)", mib(m["agent_rss"]), mib(m["floor_rss"]), mib(m["ne_rss"]))
    row("RSS peak (MiB)", mib(m["agent_hwm"]), mib(m["floor_hwm"]), mib(m["ne_hwm"]))
row("binary size (MiB)", m["agent_size"] / 2**20, m["floor_size"] / 2**20, m["ne_size"] / 2**20)
print()
if mode == "run":
    c = m["agent_children_ticks"] / tck * 1000 / m["samples"] if m["samples"] else float("nan")
    print(f"window {w:.1f} s after a 5 s warm-up: agent {m['samples']:.0f} samples (3 cadences at 1 s), "
          f"floor {ticks:.0f} ticks, node_exporter {m['scrapes']:.0f} scrapes")
    k = m["agent_ticks"] / tck * 1000 / m["samples"] if m["samples"] else float("nan")
    print(f"the fake commands the agent ran cost another {c:.2f} ms per sample (children, not in the agent's figure)")
    print(f"cross-check, agent utime+stime from /proc/PID/stat (10 ms ticks): {k:.2f} ms per sample")
else:
    print(f"window {w:.1f} s after a 5 s warm-up: agent {m['samples']:.0f} samples, floor tick {fint:.0f} s, "
          f"node_exporter {m['scrapes']:.0f} scrapes")
print(f"agent exec -> first sample at the sink (in this run, started together with the others): {m['first_sample_ms']:.0f} ms")
PY
}

mode_run() {
  echo "== MODE=run: all cadences at 1 s (a stress run, not idle), $DURATION s, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  measure 1s 1s 1
  report run 1
}

mode_idle() {
  echo "== MODE=idle: default cadences (fast 30 s, medium 300 s, slow 1800 s), $DURATION s, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  measure default 30s 30
  report idle 30
}

mode_slope() {
  local cadence=${CADENCE:-default} warmup=${WARMUP:-120} fint=30s every=30
  [ "$cadence" = 1s ] && { fint=1s; every=1; }
  echo "== MODE=slope: cadences $cadence, RSS every $STEP s for $DURATION s after a $warmup s warm-up, $(nproc) cores"
  start_sink
  start_agent "$cadence"; start_floor "$fint"; start_ne
  local i
  for i in $(seq 0 $((warmup - 1))); do [ $((i % every)) -eq 0 ] && scrape; sleep 1; done
  : > "$work/rss"
  local t0; t0=$(now_ns)
  for i in $(seq 0 $((DURATION - 1))); do
    [ $((i % every)) -eq 0 ] && scrape
    if [ $((i % STEP)) -eq 0 ]; then
      echo "$(( ($(now_ns) - t0) / 1000000 )) $(rss $agent) $(rss $floor) $(rss $ne)" >> "$work/rss"
    fi
    sleep 1
  done
  stop_all
  python3 - "$work/rss" <<'PY'
import sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
t = [r[0] / 60000 for r in rows]
print(f"{len(rows)} RSS samples over {t[-1]:.1f} min")
print("| | proxmox-agent | floor | node_exporter |")
print("|---|---|---|---|")
def slope(ys):
    n = len(t); mt = sum(t) / n; my = sum(ys) / n
    den = sum((x - mt) ** 2 for x in t)
    return sum((x - mt) * (y - my) for x, y in zip(t, ys)) / den if den else float("nan")
cols = [[r[i] for r in rows] for i in (1, 2, 3)]
print("| RSS slope (kB/min, least squares) | " + " | ".join(f"{slope(c):+.1f}" for c in cols) + " |")
print("| RSS first / last (MiB) | " + " | ".join(f"{c[0]/1024:.2f} / {c[-1]/1024:.2f}" for c in cols) + " |")
PY
}

mode_start() {
  echo "== MODE=start: $STARTS starts each, medians (ms), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  local i a=() o=() f=() t
  for i in $(seq 1 "$STARTS"); do
    start_sink
    start_agent default
    a+=("$(first_sample_ms)")
    stop_all
    write_config default
    t=$(now_ns)
    PATH="$root/testdata/fakebin:$PATH" "$work/proxmox-agent" once --config "$work/agent.toml" --log-level warn >/dev/null 2>&1
    o+=("$(( ($(now_ns) - t) / 100000 ))e-1")
    t=$(now_ns)
    "$work/floor" -ticks 1 -proc "$root/testdata/proc"
    f+=("$(( ($(now_ns) - t) / 100000 ))e-1")
  done
  python3 - "${a[*]}" "${o[*]}" "${f[*]}" <<'PY'
import sys, statistics
a, o, f = ([float(x) for x in s.split()] for s in sys.argv[1:])
med = statistics.median
print("| | ms (median) | all | / floor |")
print("|---|---|---|---|")
for name, xs in (("agent exec -> first sample at the sink", a), ("agent exec -> `once` exit", o), ("floor exec -> first tick, exit", f)):
    print(f"| {name} | {med(xs):.1f} | {' '.join(f'{x:.0f}' for x in xs)} | {med(xs) / med(f):.1f}x |")
PY
}

case "$MODE" in
  run) mode_run ;;
  idle) mode_idle ;;
  slope) mode_slope ;;
  start) mode_start ;;
  all) mode_run; echo; mode_idle; echo; mode_start ;;
  *) echo "MODE: run, idle, slope, start or all"; exit 2 ;;
esac
