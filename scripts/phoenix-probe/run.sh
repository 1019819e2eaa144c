#!/usr/bin/env bash
# Proves the sink's fidelity against the official Phoenix JS client:
# installs phoenix@1.8.16 and ws@8 from npm, starts the sink on a loopback
# port, runs probe.mjs, and checks that the sink recorded the pushes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
trap 'kill "${sink_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$root" && go build -o "$work/phoenix-sink" ./cmd/phoenix-sink)

# Drop every connection after 25 frames so the client must reconnect and rejoin.
"$work/phoenix-sink" -listen 127.0.0.1:0 -token probe-token -drop-every 25 -out "$work/samples.ndjson" 2>"$work/sink.log" &
sink_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/.*url=\(ws:[^ ]*\).*/\1/p' "$work/sink.log" | head -n1)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "sink did not start"; cat "$work/sink.log"; exit 1; }

# phoenix.js appends /websocket itself.
node "$here/probe.mjs" "${url%/websocket}" probe-token
lines=$(wc -l < "$work/samples.ndjson")
echo "sink recorded $lines pushes from phoenix.js"
[ "$lines" -ge 10 ] || { echo "too few pushes recorded"; exit 1; }
echo "phoenix-probe: 1 passed, 0 failed"
