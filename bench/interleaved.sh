#!/usr/bin/env bash
# The issue's figures, measured robustly on a noisy VM: the JSON p50 added at one connection,
# the time to the first event of a stream (burst and paced 10 ms), and throughput at 64
# connections (JSON and SSE), for the mock called directly, the plain nginx proxy, Gatehouse
# on bench/gateway.toml (busy polling on) and Gatehouse with busy polling off, interleaved
# round by round so that the VM's drift hits them all alike. Each
# round's "added" figure and ratio are taken against the direct call of the same round; the
# summary is the median over rounds. (bench/run.sh measures each target minutes apart: on
# this VM the direct baseline has moved by a third between its start and its end.)
#
#   bench/interleaved.sh                       # 7 rounds, ~10 min
#   ROUNDS=3 DURATION=4 bench/interleaved.sh
#   GW_BIN=target/pgo/release/gatehouse SECOND=target/release/gatehouse BUILD=0 bench/interleaved.sh
#
# GW_BIN is the binary measured (default: the plain release build, built first). The fourth
# column is SECOND: `nopoll` (default: GW_BIN with busy polling off), or the path of another
# binary to measure on the same config beside it (the PGO build against the plain one, say).
#
# Uses ../shared/bench (mock, nginx-proxy config, wrk script, ttfb probe) with its CPU layout:
# the gateway under test on CPU 0, wrk, the probe and the mock on CPU 1. Builds first
# (BUILD=0 skips it); nothing is built while measuring.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench}
[[ -x $HARNESS/mock.sh ]] || { echo "interleaved: $HARNESS not found" >&2; exit 1; }
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-5}
BURST_N=${BURST_N:-100}
PACED_N=${PACED_N:-20}
KEY=sk-bench-1234
MOCK_PORT=28080 NGINX_PORT=28090 GW_PORT=28100 SECOND_PORT=28101
OUT=${OUT:-$ROOT/bench/results/interleaved-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/nginx/tmp"
[[ ${BUILD:-1} == 1 ]] && cargo build --release --manifest-path "$ROOT/Cargo.toml"
GW_BIN=$(realpath "${GW_BIN:-$ROOT/target/release/gatehouse}")
SECOND=${SECOND:-nopoll}
if [[ $SECOND == nopoll ]]; then
  SECOND_BIN=$GW_BIN SECOND_LABEL="Gatehouse, busy_poll off"
else
  SECOND_BIN=$(realpath "$SECOND") SECOND_LABEL="second: $SECOND"
fi
[[ -x $GW_BIN && -x $SECOND_BIN ]] || { echo "interleaved: $GW_BIN or $SECOND_BIN is missing" >&2; exit 1; }
echo "gatehouse: $GW_BIN; fourth column: $SECOND_LABEL ($SECOND_BIN)" > "$OUT/binaries.txt"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$HARNESS/mock.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
# Both gateways start with an empty request log, as in bench/run.sh.
rm -f /tmp/gatehouse-bench.db* /tmp/gatehouse-bench-second.db*

"$HARNESS/mock.sh" start "$MOCK_PORT" 1 >/dev/null
sed -e "s#@PREFIX@#$OUT/nginx#g" -e "s#@PORT@#$NGINX_PORT#g" -e "s#@MOCK_PORT@#$MOCK_PORT#g" \
  -e "s#@KEY@#$KEY#g" "$HARNESS/peers/nginx-proxy.conf.in" > "$OUT/nginx/nginx.conf"
taskset -c 0 nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" -g 'daemon off;' 2>"$OUT/nginx.log" &
pids+=($!)
BENCH_MOCK_BASE=http://127.0.0.1:$MOCK_PORT/v1 BENCH_GW_PORT=$GW_PORT GATEHOUSE_LOG=warn \
  taskset -c 0 "$GW_BIN" serve --config "$ROOT/bench/gateway.toml" \
  2>"$OUT/gatehouse.log" &
pids+=($!)
# The fourth column's config: the same file with a database of its own, and without busy
# polling for `nopoll`.
edits=(-e 's#gatehouse-bench.db#gatehouse-bench-second.db#')
[[ $SECOND == nopoll ]] && edits+=(-e '/^busy_poll/d')
sed "${edits[@]}" "$ROOT/bench/gateway.toml" > "$OUT/gateway-second.toml"
BENCH_MOCK_BASE=http://127.0.0.1:$MOCK_PORT/v1 BENCH_GW_PORT=$SECOND_PORT GATEHOUSE_LOG=warn \
  taskset -c 0 "$SECOND_BIN" serve --config "$OUT/gateway-second.toml" \
  2>"$OUT/gatehouse-second.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && curl -fs "http://127.0.0.1:$SECOND_PORT/healthz" >/dev/null \
    && curl -fs "http://127.0.0.1:$NGINX_PORT/" >/dev/null && break
  sleep 0.1
done
for p in "${pids[@]}"; do
  kill -0 "$p" 2>/dev/null || { echo "interleaved: a proxy did not start (port taken?); see $OUT/*.log" >&2; exit 1; }
done

declare -A url=(
  [direct]=http://127.0.0.1:$MOCK_PORT/v1/chat/completions
  [nginx]=http://127.0.0.1:$NGINX_PORT/v1/chat/completions
  [gatehouse]=http://127.0.0.1:$GW_PORT/v1/chat/completions
  [second]=http://127.0.0.1:$SECOND_PORT/v1/chat/completions
)
export BENCH_BODY=$HARNESS/payloads/chat.json BENCH_KEY=$KEY
CSV=$OUT/rounds.csv
echo "round,target,json_p50_ms,burst_first_ms,paced_first_ms,json64_rps,sse64_rps" > "$CSV"
p50_of() { # wrk --latency output -> p50 in ms
  awk '/^ +50%/ { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v/=1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v*=1000 } print v }'
}
first_of() { # the last ttfb.csv line -> first-event p50 (ms)
  tail -1 "$1" | cut -d, -f8
}
rps_of() { # wrk output -> requests per second
  awk '/^Requests\/sec/ { print $2 }'
}
for r in $(seq "$ROUNDS"); do
  for t in direct nginx gatehouse second; do
    taskset -c 1 wrk -t1 -c1 -d1s -s "$HARNESS/lib/wrk-post.lua" "${url[$t]}" >/dev/null 2>&1 || true
    p50=$(taskset -c 1 wrk -t1 -c1 -d"${DURATION}s" --latency -s "$HARNESS/lib/wrk-post.lua" \
      "${url[$t]}" 2>&1 | p50_of)
    tt=$OUT/ttfb-$t.csv
    taskset -c 1 python3 "$HARNESS/lib/ttfb.py" "${url[$t]}" "$HARNESS/payloads/chat-stream.json" \
      "$BURST_N" "$tt" "$t,burst" "$KEY" >/dev/null
    burst=$(first_of "$tt")
    taskset -c 1 python3 "$HARNESS/lib/ttfb.py" "${url[$t]}" "$HARNESS/payloads/chat-stream-paced.json" \
      "$PACED_N" "$tt" "$t,paced" "$KEY" >/dev/null
    paced=$(first_of "$tt")
    json64=$(taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" -s "$HARNESS/lib/wrk-post.lua" "${url[$t]}" 2>&1 | rps_of)
    sse64=$(BENCH_BODY=$HARNESS/payloads/chat-stream.json taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" \
      -s "$HARNESS/lib/wrk-post.lua" "${url[$t]}" 2>&1 | rps_of)
    echo "$r,$t,$p50,$burst,$paced,$json64,$sse64" | tee -a "$CSV"
  done
done

SECOND_LABEL=$SECOND_LABEL python3 - "$CSV" <<'EOF' | tee "$OUT/summary.md"
import csv, os, statistics, sys
second = os.environ["SECOND_LABEL"]
rows = list(csv.DictReader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault(r["round"], {})[r["target"]] = r
cols = [("json_p50_ms", "JSON p50, 1 conn"), ("burst_first_ms", "SSE first event, burst"),
        ("paced_first_ms", "SSE first event, paced 10 ms")]
print(f"median over {len(by)} interleaved rounds; added = target - direct of the same round (ms)\n")
print(f"| | direct | nginx (added) | Gatehouse (added) | {second} (added) |")
print("| --- | ---: | ---: | ---: | ---: |")
for key, label in cols:
    med = lambda t: statistics.median(float(v[t][key]) for v in by.values())
    add = lambda t: statistics.median(float(v[t][key]) - float(v["direct"][key]) for v in by.values())
    print(f"| {label} | {med('direct'):.3f} | " + " | ".join(
        f"{med(t):.3f} (+{add(t):.3f})" for t in ("nginx", "gatehouse", "second")) + " |")
print(f"\nthroughput at 64 connections, req/s or streams/s; ratio = target / direct of the same round\n")
print(f"| | direct | nginx (ratio) | Gatehouse (ratio) | {second} (ratio) |")
print("| --- | ---: | ---: | ---: | ---: |")
for key, label in [("json64_rps", "JSON, 64 conns"), ("sse64_rps", "SSE, 64 conns")]:
    med = lambda t: statistics.median(float(v[t][key]) for v in by.values())
    ratio = lambda t: statistics.median(float(v[t][key]) / float(v["direct"][key]) for v in by.values())
    print(f"| {label} | {med('direct'):,.0f} | " + " | ".join(
        f"{med(t):,.0f} ({ratio(t):.3f})" for t in ("nginx", "gatehouse", "second")) + " |")
EOF
