#!/usr/bin/env bash
# The chaos soak: 30 minutes at 50 req/s against random upstream faults and Redis pauses,
# checking that every response is 200 (or 503 with Retry-After), no request outlives its
# deadline, the open circuit makes no calls but its trials, and memory and descriptors stay
# flat; see bench/README.md ("Chaos soak").
#
#   bench/soak.sh [--quick] [OUT_DIR]      (--quick: 3 minutes; too short to judge memory
#                                           and descriptors, which it reports unjudged)
#
# Installs wrk and redis-server from Debian and matplotlib in bench/.venv when missing.
# Bounded in time; stops everything it started. Exits non-zero if an invariant fails.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK="" OUT=""
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK="--quick" ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; exit 2 ;;
    *) OUT="$arg" ;;
  esac
done
OUT="${OUT:-bench/out/soak-$(date +%Y%m%d-%H%M%S)}"
for pkg in wrk:wrk redis-server:redis-server; do
  if ! command -v "${pkg%%:*}" >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg#*:}" >/dev/null
  fi
done
VENV=bench/.venv
if ! "$VENV/bin/python" -c 'import matplotlib' >/dev/null 2>&1; then
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q -r bench/requirements.txt
fi
cargo build --release -q -p breakwater -p fake-llm
BIN_DIR="$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
mkdir -p "$OUT"
LIMIT=$([ -n "$QUICK" ] && echo 600 || echo 2700)
PYTHONPATH=bench timeout -k 15 "$LIMIT" "$VENV/bin/python" -m breakwater_bench.soak $QUICK \
  --bin-dir "$BIN_DIR" --command "bench/soak.sh${QUICK:+ $QUICK}" "$OUT" &
RUN=$!
trap 'kill -TERM "$RUN" 2>/dev/null || true; wait "$RUN" 2>/dev/null || true; exit 130' INT TERM
wait "$RUN"
echo "report: $OUT/soak.md" >&2
