#!/usr/bin/env bash
# The request log at one million rows (RELIABILITY 27), on SQLite and on the machine's
# Postgres: query times, row size, and the slowest write while retention deletes.
#   bench/logs.sh            # 1,000,000 rows each (~5 min with the build)
#   ROWS=200000 bench/logs.sh
#   BACKENDS=sqlite bench/logs.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${ROWS:-1000000}
BACKENDS=${BACKENDS:-sqlite postgres}
cargo build --release --example log_bench --manifest-path "$ROOT/Cargo.toml"
for backend in $BACKENDS; do
  "$ROOT/target/release/examples/log_bench" "$backend" "$ROWS"
  echo
done
