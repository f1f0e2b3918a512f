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
source bench/lib.sh
bench_args soak "$@"
bench_apt wrk:wrk redis-server:redis-server
bench_venv
bench_build
bench_run soak "$([ -n "$QUICK" ] && echo 600 || echo 2700)" soak.md
