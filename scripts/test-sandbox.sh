#!/usr/bin/env bash
# Runs the agent under the system call filter of packaging/proxmox-agent.service,
# as far as a machine whose PID 1 is not systemd allows (systemd-run needs it):
#
# 1. strace: the agent's `once` (with the fake zpool/zfs/pvesh/smartctl of
#    testdata/fakebin) and the daemon (start, a delivered sample to the local
#    sink, `status`, SIGHUP, SIGTERM) are traced with every child. Any system
#    call outside the unit's SystemCallFilter= lines, expanded by this host's
#    `systemd-analyze syscall-filter`, fails the test.
# 2. seccomp for real, where /usr/bin/python3 has the seccomp module
#    (python3-seccomp): `once` runs with that allow list loaded (a refused
#    call kills the process, stricter than the unit's EPERM), the unit's
#    capability bounding set, no_new_privs and UMask 0077, and must give the
#    same sources and errors as without.
#
# Prints "sandbox: N passed, M failed"; a part whose tool is missing says
# "skip" (CI installs strace and python3-seccomp).
set -uo pipefail
cd "$(dirname "$0")/.."
unit=packaging/proxmox-agent.service
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; [ -z "${2:-}" ] || sed 's/^/     /' <<<"$2" | head -30; }
if ! command -v systemd-analyze >/dev/null; then
  echo "skip sandbox: no systemd-analyze to expand the unit's SystemCallFilter="; exit 0
fi
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

# --- the allow list: the unit's SystemCallFilter= lines in order (an allow
# list, then "~" lines taking calls away), groups expanded recursively.
declare -A seen
expand() { # expand NAME: the calls of a group (recursively) or the call itself
  local n=$1
  case $n in
    @*) [ -n "${seen[$n]:-}" ] && return; seen[$n]=1
        systemd-analyze syscall-filter "$n" | grep -v '^[[:space:]]*#' | tr -s ' \t' '\n' | grep -v '^$' | tail -n +2 |
          while read -r m; do expand "$m"; done ;;
    *) echo "$n" ;;
  esac
}
: > "$tmp/allow"
while IFS= read -r spec; do
  seen=()
  case $spec in
    "~"*) for g in ${spec#\~}; do expand "$g"; done | sort -u > "$tmp/deny"
          sort -u "$tmp/allow" | comm -23 - "$tmp/deny" > "$tmp/allow.new"; mv "$tmp/allow.new" "$tmp/allow" ;;
    *)    { cat "$tmp/allow"; for g in $spec; do expand "$g"; done; } | sort -u > "$tmp/allow.new"; mv "$tmp/allow.new" "$tmp/allow" ;;
  esac
done < <(sed -n 's/^SystemCallFilter=//p' "$unit")
n_allow=$(wc -l < "$tmp/allow")
if [ "$n_allow" -lt 100 ]; then bad "allow list from $unit" "only $n_allow calls: the unit's filter was not understood"; exit 1; fi
echo "     the unit allows $n_allow system calls"

go build -o "$tmp/proxmox-agent" ./cmd/proxmox-agent && go build -o "$tmp/phoenix-sink" ./cmd/phoenix-sink || { bad "build"; exit 1; }
agent="$tmp/proxmox-agent"
export PATH="$PWD/testdata/fakebin:$PATH"

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "timed out waiting for $what"; return 1; }
    sleep 0.1
  done
}

# calls FILE...: the system call names in strace output files.
calls() {
  sed -E -e 's/^[0-9]+ +//' -e 's/^<\.\.\. ([a-z0-9_]+) resumed>.*/\1/' -e 's/\(.*//' "$@" | grep -E '^[a-z_][a-z0-9_]*$' | sort -u
}

if command -v strace >/dev/null && strace -f -qq -o /dev/null true 2>/dev/null; then
  # once, every source, with the fake commands.
  if strace -f -qq -o "$tmp/trace.once" "$agent" once --config testdata/agent-demo.toml > "$tmp/once.json" 2> "$tmp/once.err" &&
     grep -q '"zfs_pools"' "$tmp/once.json"; then
    ok "once runs under strace"
  else
    bad "once runs under strace" "$(cat "$tmp/once.err")"
  fi

  # The daemon: a sample delivered to the sink, status, SIGHUP, SIGTERM.
  port=$((20000 + RANDOM % 20000))
  mkdir -p "$tmp/spool" "$tmp/dump"
  cat > "$tmp/agent.toml" <<EOF
server_url = "ws://127.0.0.1:$port/socket/websocket"
token = "dev-token"
host_id = "pve-demo"
node = "pve1"
[intervals]
fast_seconds = 1
[proc]
root = "$PWD/testdata/proc"
[pve]
etc_dir = "$PWD/testdata/pmxcfs/pve9"
[spool]
dir = "$tmp/spool"
[status]
socket = "$tmp/status.sock"
[debug]
dump_dir = "$tmp/dump"
EOF
  chmod 600 "$tmp/agent.toml"
  "$tmp/phoenix-sink" -listen "127.0.0.1:$port" -out "$tmp/sink.ndjson" 2>"$tmp/sink.err" & pids+=($!)
  strace -f -qq -o "$tmp/trace.run" "$agent" run --config "$tmp/agent.toml" 2>"$tmp/run.err" & strace_pid=$!; pids+=($strace_pid)
  daemon_ok=1
  wait_for "the agent process" 10 pgrep -P "$strace_pid" >/dev/null || daemon_ok=0
  apid=$(pgrep -P "$strace_pid" | head -n1)
  if [ "$daemon_ok" = 1 ] && wait_for "a sample at the sink" 30 test -s "$tmp/sink.ndjson" && wait_for "the status socket" 10 test -S "$tmp/status.sock" &&
     strace -f -qq -o "$tmp/trace.status" "$agent" status --socket "$tmp/status.sock" > "$tmp/status.out" 2>&1; then
    ok "run: delivers a sample and answers status under strace"
  else
    bad "run: delivers a sample and answers status under strace" "$(tail -n 20 "$tmp/run.err" "$tmp/status.out" 2>/dev/null)"
    daemon_ok=0
  fi
  if [ "$daemon_ok" = 1 ]; then
    # What SIGHUP surely does: reopen the dump files. Rotate them the way
    # logrotate does and wait for the agent to write new ones.
    if wait_for "the dump's samples.log" 15 test -s "$tmp/dump/samples.log"; then
      mv "$tmp/dump/samples.log" "$tmp/dump/samples.log.1"
      kill -HUP "$apid"
      if wait_for "a new samples.log after SIGHUP" 15 test -s "$tmp/dump/samples.log"; then ok "run: SIGHUP reopens the dump files"
      else bad "run: SIGHUP reopens the dump files" "$(tail -n 20 "$tmp/run.err")"; fi
    else
      bad "run: the dump is written" "$(ls -l "$tmp/dump"; tail -n 20 "$tmp/run.err")"
    fi
    kill -TERM "$apid"
    if wait "$strace_pid"; then ok "run: SIGTERM: exit 0"; else bad "run: SIGTERM: exit 0" "$(tail -n 20 "$tmp/run.err")"; fi
  fi

  calls "$tmp"/trace.* > "$tmp/used"
  outside=$(comm -23 "$tmp/used" "$tmp/allow")
  echo "     traced: $(wc -l < "$tmp/used") distinct system calls ($(ls "$tmp"/trace.* | wc -l) runs)"
  if [ -z "$outside" ]; then ok "every traced call is in the unit's SystemCallFilter"
  else bad "every traced call is in the unit's SystemCallFilter" "outside the filter: $(echo $outside)"; fi
else
  echo "skip strace part: strace missing or not permitted here"
fi

# --- the filter loaded for real.
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import seccomp' 2>/dev/null && command -v setpriv >/dev/null; then
  caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr ' ' '\n' | sed 's/^CAP_//' | tr 'A-Z' 'a-z' | sed 's/^/+/' | paste -sd, -)
  cat > "$tmp/seccomp-exec.py" <<'PY'
# seccomp-exec.py ALLOWFILE CMD...: load an allow list (anything else kills
# the process) and exec CMD.
import os, sys, seccomp
f = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
for name in open(sys.argv[1]).read().split():
    try:
        f.add_rule(seccomp.ALLOW, name)
    except Exception:
        pass  # a call this architecture does not have
f.load()
os.execv(sys.argv[2], sys.argv[2:])
PY
  "$agent" once --config testdata/agent-demo.toml > "$tmp/plain.json" 2>/dev/null
  (umask 0077; exec setpriv --bounding-set "-all,$caps" --no-new-privs -- \
     /usr/bin/python3 "$tmp/seccomp-exec.py" "$tmp/allow" "$agent" once --config testdata/agent-demo.toml) > "$tmp/filtered.json" 2> "$tmp/filtered.err"
  rc=$?
  # Same sources, same errors (the values differ: times, uptime).
  shape() { grep -oE '"(error|[a-z_]+_error)": *"[^"]*"|^    "[a-z_]+": \{' "$1" | sort; }
  if [ "$rc" -eq 0 ] && [ -s "$tmp/filtered.json" ] && diff <(shape "$tmp/plain.json") <(shape "$tmp/filtered.json") > "$tmp/shape.diff"; then
    ok "once under the real filter ($caps bounding set, no_new_privs, umask 0077): same sources and errors"
  else
    bad "once under the real filter" "exit $rc$( [ "$rc" -eq 159 ] && echo ' (SIGSYS: a refused system call)')
$(cat "$tmp/filtered.err" "$tmp/shape.diff" 2>/dev/null | tail -n 20)"
  fi
else
  echo "skip real-filter part: needs /usr/bin/python3 with the seccomp module (python3-seccomp) and setpriv"
fi

echo "sandbox: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
