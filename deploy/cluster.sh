#!/usr/bin/env bash
# A local cluster on loopback: N Breakwater replicas on one PostgreSQL database, sharing
# answers and breaker state through their own Redis, behind nginx (round-robin).
#
#   deploy/cluster.sh [--replicas N] [--port P] [--for SECONDS]
#
# PostgreSQL: the server at $PG_URL (default postgres://postgres@127.0.0.1:5432/postgres);
# the database `breakwater_cluster` is created there if missing and kept. Redis, nginx and,
# unless HF_API_TOKEN is set, a fake-llm upstream are started here on free ports. Prints the
# URL, serves until Ctrl-C or SECONDS have passed (default 600), then stops everything it
# started and removes its temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."

REPLICAS=3 PORT="" FOR=600
while [ $# -gt 0 ]; do
  case "$1" in
    --replicas) REPLICAS="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --for) FOR="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
for tool in redis-server nginx psql pg_isready; do
  command -v "$tool" >/dev/null || { echo "deploy/cluster.sh needs $tool (Debian: redis-server, nginx, postgresql-client)" >&2; exit 1; }
done
pg_isready -d "$PG_URL" -q || { echo "PostgreSQL at $PG_URL does not answer" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
up() { # waits until http://127.0.0.1:$1/healthz answers (bounded)
  for _ in $(seq 200); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing answers on port $1; logs in $WORK" >&2
  return 1
}

WORK="$(mktemp -d -t breakwater-cluster-XXXXXX)"
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  [ -f "$WORK/redis.pid" ] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  echo "cluster stopped" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building release binaries" >&2
cargo build --release -q -p breakwater -p fake-llm
BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"

DB_URL="${PG_URL%/*}/breakwater_cluster"
psql "$PG_URL" -tAc "select 1 from pg_database where datname = 'breakwater_cluster'" | grep -q 1 \
  || psql "$PG_URL" -qc 'CREATE DATABASE breakwater_cluster'

REDIS_PORT="$(free_port)"
redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log"

LLM_ENV=()
if [ -z "${HF_API_TOKEN:-}" ]; then
  LLM_PORT="$(free_port)"
  "$BIN/fake-llm" --addr "127.0.0.1:$LLM_PORT" >"$WORK/fake-llm.log" 2>&1 &
  PIDS+=($!)
  up "$LLM_PORT"
  LLM_ENV=(HF_API_TOKEN=demo "HF_API_BASE=http://127.0.0.1:$LLM_PORT")
fi

SERVERS=""
for i in $(seq "$REPLICAS"); do
  port="$(free_port)"
  env "${LLM_ENV[@]}" DATABASE_URL="$DB_URL" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    BREAKWATER_ADDR="127.0.0.1:$port" RUST_LOG="${RUST_LOG:-info}" \
    "$BIN/breakwater" --env-dir "$WORK" serve >"$WORK/replica-$i.log" 2>&1 &
  PIDS+=($!)
  up "$port"
  SERVERS+="        server 127.0.0.1:$port max_fails=1 fail_timeout=5s;"$'\n'
done

PORT="${PORT:-$(free_port)}"
sed -e "s|@PORT@|$PORT|" -e "s|@PREFIX@|$WORK|g" deploy/nginx.conf.template \
  | awk -v servers="$SERVERS" '{ if ($0 == "@SERVERS@") printf "%s", servers; else print }' \
  >"$WORK/nginx.conf"
nginx -p "$WORK" -e "$WORK/error.log" -c "$WORK/nginx.conf" &
PIDS+=($!)
up "$PORT"

cat <<INFO
Breakwater cluster: http://127.0.0.1:$PORT
  $REPLICAS replicas behind nginx (round-robin), notes in $DB_URL,
  answers and breaker state shared through Redis on 127.0.0.1:$REDIS_PORT
  logs in $WORK; stops in $FOR s or on Ctrl-C
INFO
sleep "$FOR" &
PIDS+=($!)
wait $!
