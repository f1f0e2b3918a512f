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
source bench/lib.sh
bench_args chain "$@"
bench_build
bench_run chain 300 chain.md
