#!/usr/bin/env bash
# Overload shedding on a release build (RELIABILITY 21): FLOOD (default 2000) concurrent
# paced streams (about 1 s each) against `max_in_flight = CAP` (default 32); the excess must
# be refused at once. The gateway runs on core 0, the client (bench/overload.py, asyncio, one
# thread: its own scheduling is part of each figure) on core 1.
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
export GW_PORT=${GW_PORT:-28400} FLOOD=${FLOOD:-2000}
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
taskset -c 1 python3 "$ROOT/bench/overload.py" | tee "$OUT/result.txt"
rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$gw/status")
echo "RSS before ${rss0} KiB, after ${rss1} KiB" | tee -a "$OUT/result.txt"
