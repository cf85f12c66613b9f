#!/usr/bin/env bash
# Overload shedding on a release build (RELIABILITY 21): FLOOD (default 2000) concurrent
# paced streams (about 1 s each) against `max_in_flight = CAP` (default 32); the excess must
# be refused at once. The gateway runs on core 0, the client on core 1: h2load (Debian's
# nghttp2-client) over HTTP/1.1, one request on each of FLOOD connections opened at once,
# its per-request log giving each answer's status and time from request to last byte.
#
#   GW_BIN=target/release/gatehouse bench/overload.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench}
[[ -f $HARNESS/lib/common.sh ]] || { echo "overload: $HARNESS not found" >&2; exit 1; }
BENCH_DIR=$HARNESS
# shellcheck source=/dev/null
source "$HARNESS/lib/common.sh"
BIN=$(realpath "${GW_BIN:-$ROOT/target/release/gatehouse}")
CAP=${CAP:-32}
GW_PORT=${GW_PORT:-28400} FLOOD=${FLOOD:-2000}
command -v h2load >/dev/null || { echo "overload: h2load not found (apt-get install nghttp2-client)" >&2; exit 1; }
MOCK_PORT=${MOCK_PORT:-28480}
OUT=${RESULTS_DIR:-$ROOT/bench/results}/overload-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
cat > "$OUT/gateway.toml" <<T
[server]
listen = "127.0.0.1:$GW_PORT"
max_in_flight = $CAP

[store]
url = "sqlite://$OUT/gatehouse.db"

[providers.mock]
kind = "openai-compatible"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"

[[routes]]
match = { model = "*" }
targets = ["mock/bench-model"]
T
pids=()
cleanup() { for p in "${pids[@]}"; do stop_pid "$p" overload-process; done; }
trap cleanup EXIT
mock=$(start_mock "$OUT" "$MOCK_PORT" 1)
pids+=("$mock")
ulimit -n 65536 2>/dev/null || true
GATEHOUSE_LOG=warn taskset -c 0 "$BIN" serve --config "$OUT/gateway.toml" > "$OUT/gateway.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_http "http://127.0.0.1:$GW_PORT/healthz" 30 "$gw" || { cat "$OUT/gateway.log" >&2; exit 1; }
rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$gw/status")
printf '%s' '{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"PACE_MS=50"}]}' > "$OUT/body.json"
taskset -c 1 h2load --h1 -n "$FLOOD" -c "$FLOOD" -m 1 -d "$OUT/body.json" \
  -H 'content-type: application/json' --log-file="$OUT/requests.tsv" \
  "http://127.0.0.1:$GW_PORT/v1/chat/completions" > "$OUT/h2load.txt" 2>&1 || true
python3 - "$OUT/requests.tsv" "$FLOOD" <<'PY' | tee "$OUT/result.txt"
import sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for _, status, us in rows:
    by.setdefault(status, []).append(int(us) / 1000)
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]
print(f"flood of {sys.argv[2]}: {len(rows)} answered: " + ", ".join(f"{k}: {len(v)}" for k, v in sorted(by.items())))
for k, v in sorted(by.items()):
    print(f"  {k}: p50 {pct(v, 50):.2f} ms, p99 {pct(v, 99):.2f} ms, max {max(v):.2f} ms")
PY
rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$gw/status")
echo "RSS before ${rss0} KiB, after ${rss1} KiB" | tee -a "$OUT/result.txt"
