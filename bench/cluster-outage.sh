#!/usr/bin/env bash
# The cluster-outage benchmark: 3 replicas behind nginx, 150 req/s, a 60 s upstream outage,
# with the breaker state shared through Redis and per replica, then a kill -9 of one
# replica under load; see bench/README.md ("Cluster outage").
#
#   bench/cluster-outage.sh [--quick] [OUT_DIR]
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust); installs wrk, nginx and
# redis-server from Debian when missing. Bounded in time; stops everything it started.
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
OUT="${OUT:-bench/out/cluster-$(date +%Y%m%d-%H%M%S)}"
for pkg in wrk:wrk nginx:nginx redis-server:redis-server redis-cli:redis-tools psql:postgresql-client; do
  if ! command -v "${pkg%%:*}" >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg#*:}" >/dev/null
  fi
done
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL on 127.0.0.1:5432 does not answer" >&2; exit 1; }
cargo build --release -q -p breakwater -p fake-llm
BIN_DIR="$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
mkdir -p "$OUT"
PYTHONPATH=bench timeout -k 15 600 python3 -m breakwater_bench.cluster $QUICK \
  --bin-dir "$BIN_DIR" --command "bench/cluster-outage.sh${QUICK:+ $QUICK}" "$OUT" &
RUN=$!
trap 'kill -TERM "$RUN" 2>/dev/null || true; wait "$RUN" 2>/dev/null || true; exit 130' INT TERM
wait "$RUN"
echo "report: $OUT/report.md" >&2
