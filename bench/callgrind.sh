#!/usr/bin/env bash
# Instructions the gateway executes per proxied request, under callgrind: one JSON request
# (the harness's 230-byte chat body, 839-byte reply) and one SSE stream (20 chunks), each
# over one keep-alive connection (wrk -c1) for DURATION seconds after a warm-up, with busy
# polling off (bench/gateway.toml without `busy_poll`). Instruction counts repeat to within
# a few per cent between runs of one binary (the request log's batch sizes vary), where
# wall-clock figures on these VMs move by tens of per cent: compare two builds in one sitting.
#
#   bench/callgrind.sh                       # the release build in target/
#   BIN=/path/to/gatehouse bench/callgrind.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench}
[[ -x $HARNESS/mock.sh ]] || { echo "callgrind: $HARNESS not found" >&2; exit 1; }
BIN=${BIN:-$ROOT/target/release/gatehouse}
DURATION=${DURATION:-8}
KEY=sk-bench-1234 MOCK_PORT=28080 PORT=28120
OUT=${OUT:-$ROOT/bench/results/callgrind-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  "$HARNESS/mock.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$HARNESS/mock.sh" start "$MOCK_PORT" 1 >/dev/null
export BENCH_MOCK_BASE=http://127.0.0.1:$MOCK_PORT/v1 GATEHOUSE_LOG=warn BENCH_KEY=$KEY BENCH_GW_PORT=$PORT
grep -v '^busy_poll' "$ROOT/bench/gateway.toml" > "$OUT/gateway.toml"
url=http://127.0.0.1:$PORT/v1/chat/completions
echo "mode,instructions,requests,per_request" > "$OUT/callgrind.csv"
for mode in json sse; do
  body=$HARNESS/payloads/chat.json
  [[ $mode == sse ]] && body=$HARNESS/payloads/chat-stream.json
  rm -f /tmp/gatehouse-bench.db*
  taskset -c 0 valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$OUT/callgrind.$mode" "$BIN" serve --config "$OUT/gateway.toml" 2>"$OUT/$mode.log" &
  pid=$!
  for _ in $(seq 600); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  BENCH_BODY=$body taskset -c 1 wrk -t1 -c1 -d2s -s "$HARNESS/lib/wrk-post.lua" "$url" >/dev/null 2>&1
  callgrind_control -i on "$pid" >/dev/null
  n=$(BENCH_BODY=$body taskset -c 1 wrk -t1 -c1 -d"${DURATION}s" -s "$HARNESS/lib/wrk-post.lua" "$url" 2>&1 |
    awk '/requests in/ { print $1 }')
  callgrind_control -i off "$pid" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  ir=$(callgrind_annotate "$OUT/callgrind.$mode" 2>/dev/null | awk '/PROGRAM TOTALS/ && !k++ { gsub(",","",$1); print $1 }')
  [[ $ir =~ ^[0-9]+$ && $n =~ ^[0-9]+$ && $n -gt 0 ]] || { echo "callgrind: no count for $mode" >&2; exit 1; }
  echo "$mode,$ir,$n,$((ir / n))" | tee -a "$OUT/callgrind.csv"
done
echo "results in $OUT"
