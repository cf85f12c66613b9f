#!/usr/bin/env bash
# Reproducible release builds (RELIABILITY 36): build one commit twice from clean clones in
# two different directories, each with a target directory of its own and nothing else
# building in it, and compare the binaries byte for byte.
#
#   bench/reproducible.sh            # HEAD of this checkout (about 15 min on two cores)
#   COMMIT=906b770 bench/reproducible.sh
#
# Exit status 0 when the two sha256 sums agree. When they differ, it lists the ELF sections
# the differing bytes fall in and the strings around the first difference in .rodata, which
# is where a time stamp or a path shows up. Output: bench/results/<RUN_ID>/ (both sums, the
# build logs, the sections).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMMIT=$(git -C "$ROOT" rev-parse "${COMMIT:-HEAD}")
RUN_ID=${RUN_ID:-repro-$(date +%Y%m%d-%H%M%S)}
OUT=${RESULTS_DIR:-$ROOT/bench/results}/$RUN_ID
WORK=${WORK:-$(mktemp -d /tmp/gatehouse-repro.XXXXXX)}
mkdir -p "$OUT"
log() { echo "[reproducible] $*" >&2; }

build() { # build <name>: clone the commit into $WORK/<name>, build it, print its sha256
  local dir=$WORK/$1 start=$SECONDS
  rm -rf "$dir"
  git clone -q "$ROOT" "$dir"
  git -C "$dir" checkout -q "$COMMIT"
  # The repo's .cargo/config.toml comes with the clone; nothing of this checkout's target
  # directory or environment is shared.
  (cd "$dir" && env -u CARGO_TARGET_DIR -u RUSTFLAGS -u SOURCE_DATE_EPOCH \
    cargo build --release --locked) > "$OUT/build-$1.log" 2>&1
  cp "$dir/target/release/gatehouse" "$OUT/gatehouse-$1"
  log "$1: built in $((SECONDS - start)) s in $dir"
  sha256sum "$OUT/gatehouse-$1" | cut -d' ' -f1
}

log "commit $COMMIT, two clean builds under $WORK"
a=$(build a)
rm -rf "$WORK/a"
b=$(build b)
rm -rf "$WORK/b"
printf '%s  a\n%s  b\n' "$a" "$b" | tee "$OUT/sha256"
if [[ $a == "$b" ]]; then
  log "reproducible: both builds of $COMMIT are $a ($(stat -c %s "$OUT/gatehouse-a") bytes)"
  rm -f "$OUT/gatehouse-b"
  exit 0
fi

log "NOT reproducible: the builds differ"
python3 - "$OUT/gatehouse-a" "$OUT/gatehouse-b" <<'PY' | tee "$OUT/sections.txt"
import re, subprocess, sys
a, b = (open(p, "rb").read() for p in sys.argv[1:3])
if len(a) != len(b):
    print(f"sizes differ: {len(a)} and {len(b)} bytes")
    sys.exit(0)
heads = subprocess.run(["readelf", "-S", "-W", sys.argv[1]], capture_output=True, text=True).stdout
sections = []
for line in heads.splitlines():
    m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
    if m and m.group(2) != "NOBITS":
        sections.append((m.group(1), int(m.group(3), 16), int(m.group(4), 16)))
counts, first = {}, {}
for i in (i for i in range(len(a)) if a[i] != b[i]):
    name = next((n for n, off, size in sections if off <= i < off + size), "(no section)")
    counts[name] = counts.get(name, 0) + 1
    first.setdefault(name, i)
print(f"{sum(counts.values())} bytes differ of {len(a)}")
for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
    print(f"  {name}: {n} bytes, the first at file offset {first[name]:#x}")
if ".rodata" in first:
    i = first[".rodata"]
    print("around the first .rodata difference:")
    print("  a:", a[max(0, i - 64):i + 64])
    print("  b:", b[max(0, i - 64):i + 64])
PY
exit 1
