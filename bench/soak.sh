#!/usr/bin/env bash
# Soak (RELIABILITY 22): MINUTES (default 30) of mixed traffic through Gatehouse against the
# shared harness's nginx mock: Chat Completions JSON and SSE, Anthropic Messages JSON and SSE
# translated to the OpenAI-compatible mock, requests to a provider that refuses connections,
# and clients that leave paced streams half-way. Every minute it records the load's rate, p50
# and p99, and the process's RSS, open file descriptors, live runtime tasks and background
# tasks. After the load stops it waits SETTLE seconds and records them again: the leak check
# is that fds and tasks come back to the idle baseline taken before the load.
#
#   bench/soak.sh                         # 30 min, release build first
#   MINUTES=3 GW_BIN=target/release/gatehouse bench/soak.sh   # a quick check of the script
#
# Output: bench/results/<RUN_ID>/soak.csv (one line a minute) and summary.md (printed), with
# the drift between the first minute after warm-up (minute 2) and the last one.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench}
if [[ ! -f $HARNESS/lib/common.sh ]]; then
  echo "soak: $HARNESS/lib/common.sh not found (the shared harness sits beside the repo)" >&2
  exit 1
fi
BENCH_DIR=$HARNESS
# shellcheck source=/dev/null
source "$HARNESS/lib/common.sh"
MINUTES=${MINUTES:-30}
CONNS=${CONNS:-8}
SETTLE=${SETTLE:-15}
GW_PORT=${GW_PORT:-28200}
MOCK_PORT=${MOCK_PORT:-28280}
if [[ -n ${GW_BIN:-} ]]; then
  BIN=$(realpath "$GW_BIN")
else
  cargo build --release --manifest-path "$ROOT/Cargo.toml"
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/gatehouse
fi
RUN_ID=${RUN_ID:-soak-$(date +%Y%m%d-%H%M%S)}
OUT=${RESULTS_DIR:-$ROOT/bench/results}/$RUN_ID
mkdir -p "$OUT"
ADMIN=soak-admin-$RANDOM$RANDOM
cat > "$OUT/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:$GW_PORT"
admin_token = "$ADMIN"

[store]
url = "sqlite://$OUT/gatehouse.db"

[providers.mock]
kind = "openai-compatible"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"

# Nothing listens on port 9 (discard): every attempt is refused, so these requests fail.
[providers.dead]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"

[[routes]]
match = { model = "failing-model" }
targets = ["dead/failing-model"]

[[routes]]
match = { model = "*" }
targets = ["mock/bench-model"]
EOF

pids=()
cleanup() {
  for p in "${pids[@]}"; do stop_pid "$p" soak-process; done
}
trap cleanup EXIT

mock=$(start_mock "$OUT" "$MOCK_PORT" 1)
pids+=("$mock")
GATEHOUSE_LOG=warn "$BIN" serve --config "$OUT/gateway.toml" > "$OUT/gateway.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_http "http://127.0.0.1:$GW_PORT/healthz" 30 "$gw" || { log "gateway did not start"; cat "$OUT/gateway.log" >&2; exit 1; }

# One line of process figures: rss_kb,fds,runtime_tasks,background_tasks, then the RSS's
# parts: anonymous memory (heaps), file pages (the binary, the database's files), shared
# memory (SQLite's WAL index).
sample() {
  local rss fds m rt bg parts
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$gw/status")
  parts=$(awk '/^RssAnon/ {a=$2} /^RssFile/ {f=$2} /^RssShmem/ {s=$2} END {print a "," f "," s}' "/proc/$gw/status")
  fds=$(find "/proc/$gw/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  m=$(curl -s -m 5 -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$GW_PORT/metrics")
  rt=$(awk '$1 == "gatehouse_runtime_tasks" {print $2}' <<<"$m")
  bg=$(awk '$1 == "gatehouse_background_tasks" {print $2}' <<<"$m")
  echo "$rss,$fds,${rt:-NA},${bg:-NA},$parts"
}

# A warm-up request of each kind, then the idle baseline.
curl -s -o /dev/null -H 'Content-Type: application/json' \
  -d '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}' \
  "http://127.0.0.1:$GW_PORT/v1/chat/completions"
sleep 1
baseline=$(sample)
log "idle baseline (rss_kb,fds,runtime_tasks,background_tasks): $baseline"

# Clients that leave: a paced stream (20 events 50 ms apart) dropped after 0.3 s, twice a second.
(
  body='{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"PACE_MS=50"}]}'
  while true; do
    curl -s -o /dev/null -m 0.3 -H 'Content-Type: application/json' -d "$body" \
      "http://127.0.0.1:$GW_PORT/v1/chat/completions" || true
    sleep 0.2
  done
) &
leaver=$!
pids+=("$leaver")

echo "minute,requests,rps,p50_ms,p99_ms,max_ms,non2xx,socket_errors,timeouts,rss_kb,fds,runtime_tasks,background_tasks,rss_anon_kb,rss_file_kb,rss_shmem_kb" > "$OUT/soak.csv"
for minute in $(seq 1 "$MINUTES"); do
  SOAK_OUT="$OUT/wrk.csv" SOAK_TAG="$minute," \
    wrk -t1 -c"$CONNS" -d60s --latency -s "$ROOT/bench/soak.lua" "http://127.0.0.1:$GW_PORT" \
    > "$OUT/wrk-$minute.log" 2>&1
  line=$(tail -1 "$OUT/wrk.csv")
  echo "$line,$(sample)" >> "$OUT/soak.csv"
  log "minute $minute: $(tail -1 "$OUT/soak.csv")"
done
stop_pid "$leaver" leaver
sleep "$SETTLE"
after=$(sample)
log "after the load, ${SETTLE}s idle: $after"

python3 - "$OUT" "$baseline" "$after" "$MINUTES" "$CONNS" > "$OUT/summary.md" <<'PY'
import csv, sys
out, baseline, after, minutes, conns = sys.argv[1:]
rows = list(csv.DictReader(open(f"{out}/soak.csv")))
first = rows[1] if len(rows) > 2 else rows[0]
last = rows[-1]
def drift(k):
    a, b = float(first[k]), float(last[k])
    return f"{(b - a) / a * 100:+.1f}%" if a else "n/a"
b = dict(zip(["rss_kb", "fds", "runtime_tasks", "background_tasks"], baseline.split(",")))
z = dict(zip(["rss_kb", "fds", "runtime_tasks", "background_tasks"], after.split(",")))
total = sum(int(r["requests"]) for r in rows)
print(f"# Soak: {minutes} min, {conns} connections of mixed traffic plus clients that leave streams\n")
print(f"{total} requests through wrk; minute {first['minute']} (after warm-up) against minute {last['minute']}.\n")
print("| figure | idle before | minute %s | minute %s | drift | idle after |" % (first["minute"], last["minute"]))
print("|---|---|---|---|---|---|")
print(f"| requests/s | | {first['rps']} | {last['rps']} | {drift('rps')} | |")
print(f"| p50 ms | | {first['p50_ms']} | {last['p50_ms']} | {drift('p50_ms')} | |")
print(f"| p99 ms | | {first['p99_ms']} | {last['p99_ms']} | {drift('p99_ms')} | |")
print(f"| RSS KiB | {b['rss_kb']} | {first['rss_kb']} | {last['rss_kb']} | {drift('rss_kb')} | {z['rss_kb']} |")
for k, name in [("rss_anon_kb", "anonymous"), ("rss_file_kb", "file pages"), ("rss_shmem_kb", "shared memory")]:
    print(f"| RSS: {name} KiB | | {first[k]} | {last[k]} | {drift(k)} | |")
print(f"| open fds | {b['fds']} | {first['fds']} | {last['fds']} | | {z['fds']} |")
print(f"| runtime tasks | {b['runtime_tasks']} | {first['runtime_tasks']} | {last['runtime_tasks']} | | {z['runtime_tasks']} |")
print(f"| background tasks | {b['background_tasks']} | {first['background_tasks']} | {last['background_tasks']} | | {z['background_tasks']} |")
peak = max(int(r["rss_kb"]) for r in rows)
print(f"\nPeak RSS over the run: {peak} KiB. Non-2xx answers are expected (a tenth of the mix, the `failing-model` requests, fails by design).")
PY
cat "$OUT/summary.md"
