#!/usr/bin/env bash
# The upstream-chain benchmark: the primary upstream down (503, then hung) with a healthy
# secondary, at 50 req/s; see bench/README.md ("Upstream chain").
#
#   bench/chain-outage.sh [--quick] [OUT_DIR]
#
# Standard library Python only; builds the release binaries. Bounded in time; stops
# everything it started. Exits 1 if an outage phase got anything but `llm` answers.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK="" OUT=""
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK="--quick" ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; exit 2 ;;
    *) OUT="$arg" ;;
  esac
done
OUT="${OUT:-bench/out/chain-$(date +%Y%m%d-%H%M%S)}"
cargo build --release -q -p breakwater -p fake-llm
BIN_DIR="$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
mkdir -p "$OUT"
PYTHONPATH=bench timeout -k 15 300 python3 -m breakwater_bench.chain $QUICK \
  --bin-dir "$BIN_DIR" --command "bench/chain-outage.sh${QUICK:+ $QUICK}" "$OUT" &
RUN=$!
trap 'kill -TERM "$RUN" 2>/dev/null || true; wait "$RUN" 2>/dev/null || true; exit 130' INT TERM
wait "$RUN"
echo "report: $OUT/chain.md" >&2
