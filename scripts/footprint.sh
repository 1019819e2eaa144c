#!/usr/bin/env bash
# Footprint of the agent next to prometheus-node-exporter, measured in the
# same run on this machine: both run for DURATION seconds (default 60), the
# agent with all three cadences at 1 s against the local sink with the fake
# commands, node_exporter scraped once a second. Prints RSS (idle and peak),
# CPU seconds per 1000 rounds (agent process only; the fake commands' own
# CPU is shown apart) or per 1000 scrapes, binary size, and the ratios.
# Loopback only. Installs prometheus-node-exporter from Debian if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-60}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if ! command -v prometheus-node-exporter >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq prometheus-node-exporter >/dev/null) ||
    { echo "cannot install prometheus-node-exporter"; exit 1; }
fi
NE=$(command -v prometheus-node-exporter)

CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/proxmox-agent" ./cmd/proxmox-agent
go build -o "$work/phoenix-sink" ./cmd/phoenix-sink

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
sink_port=$(free_port); ne_port=$(free_port)
"$work/phoenix-sink" -listen "127.0.0.1:$sink_port" -token fp -out "$work/samples.ndjson" 2>/dev/null &
pids+=($!)
cat > "$work/agent.toml" <<TOML
server_url = "ws://127.0.0.1:$sink_port/socket/websocket"
token = "fp"
host_id = "footprint"
node = "pve1"
[intervals]
fast_seconds = 1
medium_seconds = 1
slow_seconds = 1
[proc]
root = "$PWD/testdata/proc"
TOML
chmod 600 "$work/agent.toml"
PATH="$PWD/testdata/fakebin:$PATH" "$work/proxmox-agent" run --config "$work/agent.toml" --log-level warn 2>"$work/agent.log" &
agent=$!; pids+=($agent)
"$NE" --web.listen-address="127.0.0.1:$ne_port" 2>/dev/null &
ne=$!; pids+=($ne)
sleep 2

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# utime+stime and cutime+cstime (waited-for children), in clock ticks.
cpu_self() { awk '{print $14+$15}' "/proc/$1/stat"; }
cpu_children() { awk '{print $16+$17}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)

a_cpu0=$(cpu_self $agent); a_child0=$(cpu_children $agent); n_cpu0=$(cpu_self $ne)
a_min=$(rss $agent); n_min=$(rss $ne)
scrapes=0
for _ in $(seq 1 "$DURATION"); do
  curl -s -o /dev/null "http://127.0.0.1:$ne_port/metrics" && scrapes=$((scrapes+1))
  r=$(rss $agent); [ "$r" -lt "$a_min" ] && a_min=$r
  r=$(rss $ne); [ "$r" -lt "$n_min" ] && n_min=$r
  sleep 1
done
a_cpu=$(( $(cpu_self $agent) - a_cpu0 )); a_child=$(( $(cpu_children $agent) - a_child0 )); n_cpu=$(( $(cpu_self $ne) - n_cpu0 ))
a_peak=$(hwm $agent); n_peak=$(hwm $ne)
rounds=$(wc -l < "$work/samples.ndjson")
a_size=$(stat -c %s "$work/proxmox-agent"); n_size=$(stat -c %s "$NE")

python3 - "$DURATION" "$tck" "$rounds" "$scrapes" "$a_min" "$a_peak" "$a_cpu" "$a_child" "$a_size" "$n_min" "$n_peak" "$n_cpu" "$n_size" <<'PY'
import sys
d, tck, rounds, scrapes, a_min, a_peak, a_cpu, a_child, a_size, n_min, n_peak, n_cpu, n_size = map(float, sys.argv[1:])
a_per = a_cpu / tck / rounds * 1000 if rounds else float('nan')
c_per = a_child / tck / rounds * 1000 if rounds else float('nan')
n_per = n_cpu / tck / scrapes * 1000 if scrapes else float('nan')
mib = lambda k: k / 1024
print(f"footprint over {d:.0f} s: agent {rounds:.0f} rounds (all cadences at 1 s), node_exporter {scrapes:.0f} scrapes")
print(f"{'':28}{'proxmox-agent':>16}{'node_exporter':>16}{'ratio':>8}")
rows = [("RSS idle (MiB)", mib(a_min), mib(n_min)), ("RSS peak (MiB)", mib(a_peak), mib(n_peak)),
        ("CPU s / 1000 rounds|scrapes", a_per, n_per), ("binary size (MiB)", a_size / 2**20, n_size / 2**20)]
for name, a, n in rows:
    print(f"{name:28}{a:16.2f}{n:16.2f}{a / n:8.2f}")
print(f"(the fake commands the agent ran cost another {c_per:.2f} CPU s / 1000 rounds; on a real host zpool/pvesh dominate)")
PY
