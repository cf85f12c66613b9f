#!/usr/bin/env bash
# The dashboard at a million rows (issue 10): every page's time on SQLite and on the machine's
# Postgres, and the proxy's p99 with and without the dashboard being browsed.
#
#   bench/dashboard.sh                      # 1,000,000 rows, both stores (~10 min with the build)
#   ROWS=200000 BACKENDS=sqlite bench/dashboard.sh
#   GW_BIN=... SEED_BIN=... bench/dashboard.sh   # prebuilt gatehouse and examples/log_bench
#
# For each store: seed ROWS request records over the 60 days up to now (examples/log_bench,
# `seed`), start the gateway on it against the shared harness's nginx mock, sign in as the
# admin with the form as a browser does, then time each page RUNS times with curl (p50 and
# p95 of the whole reply). Then wrk at 4 connections on /v1/chat/completions for DURATION
# seconds alone, and again while a loop browses every page: the proxy's p99 both ways.
# Output: bench/results/<RUN_ID>/dashboard.md (printed).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench}
[[ -f $HARNESS/lib/common.sh ]] || { echo "dashboard: $HARNESS not found" >&2; exit 1; }
BENCH_DIR=$HARNESS
# shellcheck source=/dev/null
source "$HARNESS/lib/common.sh"
ROWS=${ROWS:-1000000}
BACKENDS=${BACKENDS:-sqlite postgres}
RUNS=${RUNS:-20}
DURATION=${DURATION:-20}
GW_PORT=${GW_PORT:-28400}
MOCK_PORT=${MOCK_PORT:-28480}
if [[ -z ${GW_BIN:-} || -z ${SEED_BIN:-} ]]; then
  cargo build --release --bin gatehouse --example log_bench --manifest-path "$ROOT/Cargo.toml"
  GW_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/gatehouse
  SEED_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/log_bench
fi
RUN_ID=${RUN_ID:-dashboard-$(date +%Y%m%d-%H%M%S)}
OUT=${RESULTS_DIR:-$ROOT/bench/results}/$RUN_ID
mkdir -p "$OUT"
ADMIN=dash-admin-$RANDOM$RANDOM$RANDOM
PG=postgres://postgres@127.0.0.1:5432/test
pids=()
cleanup() { for p in "${pids[@]}"; do stop_pid "$p" dashboard-process; done; }
trap cleanup EXIT
mock=$(start_mock "$OUT" "$MOCK_PORT" 1)
pids+=("$mock")

report="$OUT/dashboard.md"
echo "# Dashboard at $ROWS rows ($RUNS runs a page; proxy: wrk -c4 for ${DURATION}s)" > "$report"

for backend in $BACKENDS; do
  case $backend in
    sqlite) rm -f "$OUT/gatehouse.db"*; url="sqlite://$OUT/gatehouse.db" ;;
    postgres)
      schema=gh_dash_$$
      psql -q "$PG" -c "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
      url="$PG?options=-c%20search_path%3D$schema" ;;
  esac
  log "$backend: seeding $ROWS rows"
  "$SEED_BIN" seed "$url" "$ROWS" | tee -a "$OUT/seed-$backend.log"
  cat > "$OUT/gateway-$backend.toml" <<EOF
[server]
listen = "127.0.0.1:$GW_PORT"
admin_token = "$ADMIN"
[store]
url = "$url"
[providers.mock]
kind = "openai-compatible"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
[[routes]]
match = { model = "*" }
targets = ["mock/bench-model"]
[[keys]]
name = "bench"
key = "sk-dash-bench-0123456789"
EOF
  GATEHOUSE_LOG=warn "$GW_BIN" serve --config "$OUT/gateway-$backend.toml" > "$OUT/gateway-$backend.log" 2>&1 &
  gw=$!
  pids+=("$gw")
  wait_http "http://127.0.0.1:$GW_PORT/healthz" 30 "$gw" || { cat "$OUT/gateway-$backend.log" >&2; exit 1; }
  base=http://127.0.0.1:$GW_PORT
  jar=$OUT/cookies-$backend
  rm -f "$jar"
  nonce=$(curl -s -c "$jar" "$base/ui/login" | grep -o 'name="nonce" value="[0-9a-f]*"' | sed 's/.*value="//;s/"//')
  code=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" --data-urlencode "token=$ADMIN" --data-urlencode "nonce=$nonce" "$base/ui/login")
  [[ $code == 303 ]] || { echo "sign-in failed: $code" >&2; exit 1; }
  one=$(curl -s -b "$jar" "$base/ui/logs?status=error&limit=1" | grep -o 'href="/ui/logs/bench-[0-9]*"' | head -1 | sed 's/href="//;s/"//')
  pages=(
    "/ui/" "/ui/logs" "/ui/logs?status=error" "/ui/logs?model=model-7" "/ui/logs?key=key_042"
    "/ui/logs?team=team_3" "/ui/logs?provider=provider_2" "/ui/logs?tag=feature%3Df7"
    "/ui/logs?q=overloaded" "/ui/logs?since=30d&status=cancelled" "$one"
    "/ui/usage?by=model" "/ui/usage?by=key" "/ui/usage?by=day" "/ui/usage?by=tag"
    "/ui/budgets" "/ui/keys" "/ui/providers" "/ui/routes" "/ui/config"
  )
  {
    echo
    echo "## $backend"
    echo
    echo "| page | status | p50 ms | p95 ms | bytes |"
    echo "|---|---|---:|---:|---:|"
  } >> "$report"
  for page in "${pages[@]}"; do
    times=()
    for _ in $(seq "$RUNS"); do
      read -r code t size < <(curl -s -o /dev/null -b "$jar" -w '%{http_code} %{time_total} %{size_download}\n' "$base$page")
      times+=("$t")
    done
    stats=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {p50=a[int((NR+1)/2)]; i=int(NR*0.95+0.999); if (i>NR) i=NR; printf "%.1f %.1f", p50*1000, a[i]*1000}')
    echo "| \`$page\` | $code | ${stats% *} | ${stats#* } | $size |" >> "$report"
  done
  # The proxy alone, then while the dashboard is browsed page after page.
  lua=$OUT/post.lua
  cat > "$lua" <<'LUA'
wrk.method = "POST"
wrk.body = [[{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-dash-bench-0123456789"
LUA
  # The load must be answered: a 2xx from the gateway through the mock.
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -H 'Authorization: Bearer sk-dash-bench-0123456789' \
    -d '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}' "$base/v1/chat/completions")
  [[ $code == 200 ]] || { echo "the proxied request got $code" >&2; exit 1; }
  wrk -t1 -c4 -d"${DURATION}s" --latency -s "$lua" "$base/v1/chat/completions" > "$OUT/wrk-$backend-alone.log"
  alone=$(awk '$1 == "99%" {print $2}' "$OUT/wrk-$backend-alone.log")
  ( while true; do for page in "${pages[@]}"; do curl -s -o /dev/null -b "$jar" "$base$page"; done; done ) &
  browser=$!
  wrk -t1 -c4 -d"${DURATION}s" --latency -s "$lua" "$base/v1/chat/completions" > "$OUT/wrk-$backend-browsed.log"
  browsed=$(awk '$1 == "99%" {print $2}' "$OUT/wrk-$backend-browsed.log")
  kill "$browser" 2>/dev/null || true
  wait "$browser" 2>/dev/null || true
  echo >> "$report"
  echo "Proxy p99 (wrk -c4, ${DURATION}s, non-2xx counted by wrk in $OUT/wrk-*.log): $alone alone, $browsed while the dashboard is browsed." >> "$report"
  stop_pid "$gw" gateway
  [[ $backend == postgres ]] && psql -q "$PG" -c "DROP SCHEMA $schema CASCADE" >/dev/null
  [[ $backend == sqlite ]] && rm -f "$OUT/gatehouse.db"*
done
cat "$report"
