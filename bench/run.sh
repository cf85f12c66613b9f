#!/usr/bin/env bash
# Measure Gatehouse with the shared load harness (../shared/bench, PEERS=custom): the mock
# upstream called directly, then the plain nginx reverse proxy, then Gatehouse pinned to one
# core, JSON and SSE at 1/16/64 connections, in one run so that the ratios compare like with
# like. Results: bench/results/<run-id>/results.md (and .csv); the summary is printed at the end.
#
#   bench/run.sh                       # full matrix (~8 min)
#   DURATION=5 bench/run.sh            # quicker, rougher
#   PEERS="custom" bench/run.sh        # Gatehouse and the direct baseline only
#   PGO=1 bench/run.sh                 # the profile-guided build (bench/pgo.sh, ~20 min more)
#   CONFIG=default bench/run.sh        # the embedded default config (`gatehouse serve` with no
#                                      # --config; the mock as GATEHOUSE_OPENAI_COMPATIBLE_URL,
#                                      # its store in a fresh directory), as the README reports
#
# Build first happens here (release, or PGO with PGO=1; GW_BIN=path measures a binary already
# built); nothing is built while the load runs.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench}
if [[ ! -x $HARNESS/run-peers.sh ]]; then
  echo "bench: $HARNESS/run-peers.sh not found (the shared harness sits beside the repo)" >&2
  exit 1
fi
if [[ -n ${GW_BIN:-} ]]; then
  BIN=$(realpath "$GW_BIN")
elif [[ ${PGO:-0} == 1 ]]; then
  BIN=$("$ROOT/bench/pgo.sh" | tail -1)
else
  cargo build --release --manifest-path "$ROOT/Cargo.toml"
  BIN=$ROOT/target/release/gatehouse
fi
# Each run starts with an empty request log (bench/gateway.toml's database): one that grew over
# earlier runs would only fill /tmp (it had reached 5.7 GB by the end of session 19).
rm -f /tmp/gatehouse-bench.db*
export RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
export RUN_ID=${RUN_ID:-gatehouse-$(date +%Y%m%d-%H%M%S)}
export PEERS=${PEERS:-"nginx-proxy custom"}
export GW_NAME=gatehouse GW_PORT=${GW_PORT:-28100}
if [[ ${CONFIG:-} == default ]]; then
  export GW_DIR=${GW_DIR:-/tmp/gatehouse-bench-default}
  rm -rf "$GW_DIR" && mkdir -p "$GW_DIR"
  export GW_CMD="env GATEHOUSE_OPENAI_COMPATIBLE_URL=\$BENCH_MOCK_BASE $BIN serve --listen 127.0.0.1:$GW_PORT"
else
  export GW_CMD="$BIN serve --config $ROOT/bench/gateway.toml"
fi
export GW_READY_URL=http://127.0.0.1:$GW_PORT/healthz
export GATEHOUSE_LOG=${GATEHOUSE_LOG:-warn}
"$HARNESS/run-peers.sh"
cat "$RESULTS_DIR/$RUN_ID/results.md"
