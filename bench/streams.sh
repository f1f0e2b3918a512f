#!/usr/bin/env bash
# The streaming benchmark: the time breakwater adds to an upstream's first token at
# 50 streams/s, and the stream-fault matrix under load (zero truncated answers presented
# as complete); see bench/README.md ("Streaming").
#
#   bench/streams.sh [--quick] [OUT_DIR]
#   BENCH_PIN=1 bench/streams.sh   # the client and fake-llm on core 0, breakwater on the others
#   BENCH_NO_HALT=1 bench/streams.sh   # a diagnosis: no core halts when idle (see bench/README.md)
#
# Standard library Python only; builds the release binaries. Bounded in time; stops
# everything it started. Exits 1 if any truncated answer was presented as complete.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_args streams "$@"
bench_build
bench_run streams 300 streams.md
