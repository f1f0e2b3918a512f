#!/usr/bin/env bash
# The streaming benchmark: the time breakwater adds to an upstream's first token at
# 50 streams/s, and the stream-fault matrix under load (zero truncated answers presented
# as complete); see bench/README.md ("Streaming").
#
#   bench/streams.sh [--quick] [OUT_DIR]
#
# Standard library Python only; builds the release binaries. Bounded in time; stops
# everything it started. Exits 1 if any truncated answer was presented as complete.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK="" OUT=""
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK="--quick" ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; exit 2 ;;
    *) OUT="$arg" ;;
  esac
done
OUT="${OUT:-bench/out/streams-$(date +%Y%m%d-%H%M%S)}"
cargo build --release -q -p breakwater -p fake-llm
BIN_DIR="$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
mkdir -p "$OUT"
PYTHONPATH=bench timeout -k 15 300 python3 -m breakwater_bench.streams $QUICK \
  --bin-dir "$BIN_DIR" --command "bench/streams.sh${QUICK:+ $QUICK}" "$OUT" &
RUN=$!
trap 'kill -TERM "$RUN" 2>/dev/null || true; wait "$RUN" 2>/dev/null || true; exit 130' INT TERM
wait "$RUN"
echo "report: $OUT/streams.md" >&2
