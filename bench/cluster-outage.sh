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
source bench/lib.sh
bench_args cluster "$@"
bench_apt wrk:wrk nginx:nginx redis-server:redis-server redis-cli:redis-tools psql:postgresql-client
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL on 127.0.0.1:5432 does not answer" >&2; exit 1; }
bench_build
bench_run cluster 600 report.md
