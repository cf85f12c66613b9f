#!/usr/bin/env bash
# What routing costs: Gatehouse with the plain bench config (one provider, no rules) against
# the same binary with bench/gateway-routed.toml (twelve rules walked, a rewrite, a weighted
# split over two providers, one of them with two keys balanced by load), both in front of the
# harness's mock upstream.
#
#   bench/routing.sh                 # 5 interleaved rounds of wall-clock figures (~3 min)
#   CALLGRIND=1 bench/routing.sh     # also instructions per request under callgrind (~2 min)
#   ROUNDS=0 CALLGRIND=1 bench/routing.sh   # instructions only
#
# Wall clock: each round measures both configs back to back (JSON p50 at 1 connection, req/s
# at 16 connections); the summary is the median per config and the median of the per-round
# ratio. Callgrind: instructions executed by the gateway per request over 2,000 requests
# after a warm-up, exact and repeatable. Gatehouse on CPU 0, wrk and the mock on CPU 1.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench}
[[ -x $HARNESS/mock.sh ]] || { echo "routing: $HARNESS not found" >&2; exit 1; }
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
KEY=sk-bench-1234
MOCK_PORT=28080 PLAIN_PORT=28100 ROUTED_PORT=28110
OUT=${OUT:-$ROOT/bench/results/routing-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
[[ ${BUILD:-1} == 1 ]] && cargo build --release --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/gatehouse

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$HARNESS/mock.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$HARNESS/mock.sh" start "$MOCK_PORT" 1 >/dev/null
export BENCH_MOCK_BASE=http://127.0.0.1:$MOCK_PORT/v1 GATEHOUSE_LOG=warn
export BENCH_BODY=$HARNESS/payloads/chat.json BENCH_KEY=$KEY
declare -A cfg=([plain]=$ROOT/bench/gateway.toml [routed]=$ROOT/bench/gateway-routed.toml)
declare -A port=([plain]=$PLAIN_PORT [routed]=$ROUTED_PORT)

wait_up() {
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$1/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "gateway on $1 did not start" >&2; return 1
}
smoke() { # the routed config must really serve through its split
  curl -fsS -D "$OUT/smoke-$1.headers" -o /dev/null -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' --data-binary "@$BENCH_BODY" \
    "http://127.0.0.1:${port[$1]}/v1/chat/completions"
}

rm -f /tmp/gatehouse-bench.db* /tmp/gatehouse-bench-routed.db*
for t in plain routed; do
  BENCH_GW_PORT=${port[$t]} taskset -c 0 "$BIN" serve --config "${cfg[$t]}" 2>"$OUT/$t.log" &
  pids+=($!)
  wait_up "${port[$t]}"
  smoke "$t"
done
grep -qi '^x-gatehouse-provider: mock' "$OUT/smoke-routed.headers"

p50_of() {
  awk '/^ +50%/ { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v/=1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v*=1000 } print v }'
}
rps_of() { awk '/^Requests\/sec:/ { print $2 }'; }
CSV=$OUT/rounds.csv
echo "round,config,json_p50_ms,rps_16" > "$CSV"
for r in $(seq "$ROUNDS"); do
  for t in plain routed; do
    u=http://127.0.0.1:${port[$t]}/v1/chat/completions
    taskset -c 1 wrk -t1 -c1 -d1s -s "$HARNESS/lib/wrk-post.lua" "$u" >/dev/null 2>&1 || true
    p50=$(taskset -c 1 wrk -t1 -c1 -d"${DURATION}s" --latency -s "$HARNESS/lib/wrk-post.lua" "$u" 2>&1 | p50_of)
    rps=$(taskset -c 1 wrk -t1 -c16 -d"${DURATION}s" -s "$HARNESS/lib/wrk-post.lua" "$u" 2>&1 | rps_of)
    echo "$r,$t,$p50,$rps" | tee -a "$CSV"
  done
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()

if [[ ${CALLGRIND:-0} == 1 ]]; then
  for t in plain routed; do
    rm -f /tmp/gatehouse-bench.db* /tmp/gatehouse-bench-routed.db*
    BENCH_GW_PORT=${port[$t]} taskset -c 0 valgrind --tool=callgrind --instr-atstart=no \
      --callgrind-out-file="$OUT/callgrind.$t" "$BIN" serve --config "${cfg[$t]}" 2>"$OUT/$t-callgrind.log" &
    pid=$!
    pids+=($pid)
    wait_up "${port[$t]}"
    u=http://127.0.0.1:${port[$t]}/v1/chat/completions
    for _ in $(seq 200); do smoke "$t"; done
    callgrind_control -i on "$pid" >/dev/null
    n=2000
    for _ in $(seq "$n"); do
      curl -fsS -o /dev/null -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        --data-binary "@$BENCH_BODY" "$u"
    done
    sleep 1 # let the batched usage records of these requests be written
    callgrind_control -i off "$pid" >/dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
    ir=$(callgrind_annotate "$OUT/callgrind.$t" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ { gsub(",","",$1); print $1 }')
    [[ $ir =~ ^[0-9]+$ ]] || { echo "routing: no instruction count for $t" >&2; exit 1; }
    echo "$t,$ir,$n" >> "$OUT/callgrind.csv"
  done
  pids=()
fi

python3 - "$CSV" "$OUT/callgrind.csv" <<'PY' | tee "$OUT/summary.md"
import csv, os, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault(r["round"], {})[r["config"]] = r
med = lambda c, k: statistics.median(float(v[c][k]) for v in by.values())
ratio = lambda k: statistics.median(float(v["routed"][k]) / float(v["plain"][k]) for v in by.values())
print(f"median over {len(by)} interleaved rounds\n")
print("| | plain | routed | routed / plain |")
print("| --- | ---: | ---: | ---: |")
if by:
    print(f"| JSON p50, 1 conn (ms) | {med('plain','json_p50_ms'):.3f} | {med('routed','json_p50_ms'):.3f} | {ratio('json_p50_ms'):.3f} |")
    print(f"| JSON req/s, 16 conns | {med('plain','rps_16'):,.0f} | {med('routed','rps_16'):,.0f} | {ratio('rps_16'):.3f} |")
if os.path.exists(sys.argv[2]):
    ir = {}
    for line in open(sys.argv[2]):
        t, total, n = line.strip().split(",")
        ir[t] = int(total) / int(n)
    print(f"| instructions per request (callgrind) | {ir['plain']/1000:.1f}k | {ir['routed']/1000:.1f}k | {ir['routed']/ir['plain']:.3f} |")
PY
