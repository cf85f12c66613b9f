#!/usr/bin/env bash
# A profile-guided (PGO) release build of Gatehouse: build an instrumented binary, run it
# under a training load against ../shared/bench's mock provider, then build again with the
# profile, so that LLVM lays out the request path's hot code contiguously and moves the rest
# out of its way. The result is target/pgo/release/gatehouse; `cargo build --release` is left
# as it is (target/release).
#
#   bench/pgo.sh               # ~20 min on 2 cores: two full release builds and ~1 min of load
#   TRAIN_SECS=2 bench/pgo.sh  # shorter training
#
# The training load covers every client schema the gateway serves, each against the mock's
# OpenAI-compatible upstream: Chat Completions (JSON and streaming, at 1 and 64 connections,
# and paced streams), Anthropic Messages, Responses and Gemini (JSON and streaming). Code the
# load does not reach (other providers, errors, the admin API) is laid out as cold: correct,
# and no slower than in a plain build to first order, but kept out of the hot pages.
#
# Needs rustup's llvm-tools component (installed here if missing), wrk and the harness's mock
# (nginx-light with the Lua module; ../shared/bench/run-peers.sh installs them).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench}
[[ -x $HARNESS/mock.sh ]] || { echo "pgo: $HARNESS not found" >&2; exit 1; }
command -v wrk >/dev/null || { echo "pgo: wrk is missing (apt-get install wrk)" >&2; exit 1; }
TRAIN_SECS=${TRAIN_SECS:-4}
MOCK_PORT=28080 GW_PORT=28105 KEY=sk-bench-1234
WORK=$ROOT/target/pgo-work
SYSROOT=$(rustc --print sysroot)
profdata() { find "$SYSROOT/lib/rustlib" -name llvm-profdata -type f 2>/dev/null | head -1; }
PROFDATA=$(profdata)
if [[ -z $PROFDATA ]]; then
  rustup component add llvm-tools >&2
  PROFDATA=$(profdata)
fi
[[ -x $PROFDATA ]] || { echo "pgo: llvm-profdata not found in $SYSROOT" >&2; exit 1; }

rm -rf "$WORK" && mkdir -p "$WORK/raw"
echo "pgo: building the instrumented binary" >&2
RUSTFLAGS="-Cprofile-generate=$WORK/raw" CARGO_TARGET_DIR=$ROOT/target/pgo-gen \
  cargo build --release --manifest-path "$ROOT/Cargo.toml"
# The build's own scripts and proc macros were instrumented too and wrote profiles as they
# ran: only the gateway's count.
rm -f "$WORK"/raw/*.profraw

gw=
cleanup() {
  [[ -n $gw ]] && kill "$gw" 2>/dev/null || true
  "$HARNESS/mock.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$HARNESS/mock.sh" start "$MOCK_PORT" 1 >/dev/null
sed -e 's#gatehouse-bench.db#gatehouse-pgo.db#' "$ROOT/bench/gateway.toml" > "$WORK/gateway.toml"
rm -f /tmp/gatehouse-pgo.db*
BENCH_MOCK_BASE=http://127.0.0.1:$MOCK_PORT/v1 BENCH_GW_PORT=$GW_PORT GATEHOUSE_LOG=warn \
  taskset -c 0 "$ROOT/target/pgo-gen/release/gatehouse" serve --config "$WORK/gateway.toml" \
  2>"$WORK/gatehouse.log" &
gw=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && break; sleep 0.1; done
kill -0 "$gw" || { echo "pgo: the instrumented gateway did not start; see $WORK/gatehouse.log" >&2; exit 1; }

# One request body per client schema, streaming and not.
cat > "$WORK/anthropic.json" <<EOF
{"model": "bench-model", "max_tokens": 256, "system": "You are a helpful assistant.", "messages": [{"role": "user", "content": "Write a short paragraph and a haiku about load balancers."}]}
EOF
sed 's/}$/, "stream": true}/' "$WORK/anthropic.json" > "$WORK/anthropic-stream.json"
cat > "$WORK/responses.json" <<EOF
{"model": "bench-model", "instructions": "You are a helpful assistant.", "input": "Write a short paragraph and a haiku about load balancers.", "max_output_tokens": 256, "store": false}
EOF
sed 's/}$/, "stream": true}/' "$WORK/responses.json" > "$WORK/responses-stream.json"
cat > "$WORK/gemini.json" <<EOF
{"systemInstruction": {"parts": [{"text": "You are a helpful assistant."}]}, "contents": [{"role": "user", "parts": [{"text": "Write a short paragraph and a haiku about load balancers."}]}], "generationConfig": {"maxOutputTokens": 256}}
EOF

base=http://127.0.0.1:$GW_PORT
load() { # BODY PATH CONNS
  BENCH_BODY=$1 BENCH_KEY=$KEY taskset -c 1 wrk -t1 -c"$3" -d"${TRAIN_SECS}s" \
    -s "$HARNESS/lib/wrk-post.lua" "$base$2" >/dev/null 2>&1 || true
}
echo "pgo: training (${TRAIN_SECS} s a load)" >&2
for conns in 1 64; do
  load "$HARNESS/payloads/chat.json" /v1/chat/completions "$conns"
  load "$HARNESS/payloads/chat-stream.json" /v1/chat/completions "$conns"
done
taskset -c 1 python3 "$HARNESS/lib/ttfb.py" "$base/v1/chat/completions" \
  "$HARNESS/payloads/chat-stream-paced.json" 10 "$WORK/ttfb.csv" paced "$KEY" >/dev/null
for conns in 1 16; do
  load "$WORK/anthropic.json" /v1/messages "$conns"
  load "$WORK/anthropic-stream.json" /v1/messages "$conns"
  load "$WORK/responses.json" /v1/responses "$conns"
  load "$WORK/responses-stream.json" /v1/responses "$conns"
  load "$WORK/gemini.json" /v1beta/models/bench-model:generateContent "$conns"
  load "$WORK/gemini.json" "/v1beta/models/bench-model:streamGenerateContent?alt=sse" "$conns"
done
# A graceful stop writes the profile.
kill -TERM "$gw"
wait "$gw" || true
gw=
ls "$WORK"/raw/*.profraw >/dev/null 2>&1 || { echo "pgo: no profile was written" >&2; exit 1; }
"$PROFDATA" merge -o "$WORK/gatehouse.profdata" "$WORK"/raw/*.profraw

echo "pgo: building with the profile" >&2
RUSTFLAGS="-Cprofile-use=$WORK/gatehouse.profdata" CARGO_TARGET_DIR=$ROOT/target/pgo \
  cargo build --release --manifest-path "$ROOT/Cargo.toml"
echo "$ROOT/target/pgo/release/gatehouse"
