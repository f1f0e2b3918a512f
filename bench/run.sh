#!/usr/bin/env bash
# End-to-end benchmark of Breakwater's circuit breaker; see bench/README.md.
#
#   bench/run.sh [--quick] [--profile] [--only=a,b] [OUT_DIR]
#
# Installs what it needs (wrk from Debian, matplotlib in bench/.venv), builds the release
# binaries, then runs every scenario against fake-llm and `breakwater serve` on 127.0.0.1
# and writes OUT_DIR/report.md, PNGs and raw data (default bench/out/<timestamp>).
# Bounded in time: the run is killed, with everything it started, past its limit.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//'; }
QUICK="" PROFILE="" ONLY="" OUT="" OUT_ARG=""
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK="--quick" ;;
    --profile) PROFILE="--profile" ;;
    --only=*) ONLY="$arg" ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; usage >&2; exit 2 ;;
    *) OUT="$arg" OUT_ARG="$arg" ;;
  esac
done
OUT="${OUT:-bench/out/$(date +%Y%m%d-%H%M%S)}"
LIMIT=$([ -n "$QUICK" ] && echo 300 || echo 1200) # seconds for the whole run

need_apt() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "[bench] installing $2 (apt)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}
need_apt wrk wrk
[ -n "$PROFILE" ] && need_apt perf linux-perf

VENV=bench/.venv
if ! "$VENV/bin/python" -c 'import matplotlib' >/dev/null 2>&1; then
  echo "[bench] creating $VENV (matplotlib)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r bench/requirements.txt
fi

echo "[bench] building release binaries" >&2
cargo build --release -q -p breakwater -p fake-llm
BIN_DIR="$(cargo metadata --format-version 1 --no-deps \
  | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"

mkdir -p "$OUT"
COMMAND="bench/run.sh${QUICK:+ $QUICK}${PROFILE:+ $PROFILE}${ONLY:+ $ONLY}${OUT_ARG:+ $OUT_ARG}"
# `timeout` puts the run in its own process group and signals the whole group (fake-llm,
# breakwater, wrk) when the limit passes or when this script is interrupted.
PYTHONPATH=bench timeout -k 15 "$LIMIT" "$VENV/bin/python" -m breakwater_bench \
  $QUICK $PROFILE $ONLY --bin-dir "$BIN_DIR" --command "$COMMAND" "$OUT" &
RUN=$!
trap 'kill -TERM "$RUN" 2>/dev/null || true; wait "$RUN" 2>/dev/null || true; exit 130' INT TERM
wait "$RUN"
echo "[bench] report: $OUT/report.md" >&2
