#!/usr/bin/env bash
# Two builds of breakwater compared on the time they add to a stream's first piece, side by
# side in each round (paired, shuffled slots), with CPU and context switches per stream;
# see bench/README.md ("Comparing two builds").
#
#   bench/streams-ab.sh BASE [--quick] [OUT_DIR]
#
# BASE is a commit (built from a temporary worktree into target/ab) or a directory holding
# a release `breakwater`; B is this tree. BASE=HEAD on a clean tree gives the null spread.
# B_ENV="VAR=VALUE ..." configures B only (one binary under two settings); BENCH_PIN=1 keeps
# the client and fake-llm to core 0 and both servers to the others. Standard
# library Python only. About 2 minutes after the builds (quick: 20 s).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BASE="${1:?usage: bench/streams-ab.sh BASE [--quick] [OUT_DIR]}"
shift
bench_args streams-ab "$@"
bench_build
if [ -x "$BASE/breakwater" ]; then
  BASE_DIR="$(cd "$BASE" && pwd)"
else
  TREE="$(mktemp -d)"
  trap 'git worktree remove --force "$TREE" 2>/dev/null || true' EXIT
  git worktree add -q --detach "$TREE" "$BASE"
  CARGO_TARGET_DIR="$PWD/target/ab" cargo build --release -q -p breakwater \
    --manifest-path "$TREE/Cargo.toml"
  BASE_DIR="$OUT/base-bin"
  mkdir -p "$BASE_DIR"
  cp target/ab/release/breakwater "$BASE_DIR/"
  git worktree remove --force "$TREE"
fi
COMMAND="bench/streams-ab.sh $BASE${QUICK:+ $QUICK}" \
  bench_run streams_ab 600 streams_ab.md --base-bin-dir "$BASE_DIR"
