# Shared by bench/*.sh (sourced, not run): the arguments, the tools from Debian, the
# release build, and one time-bounded run of a breakwater_bench module that stops, with
# everything it started, past its limit or on Ctrl-C.

# bench_args NAME "$@": sets QUICK (--quick or empty) and OUT (default
# bench/out/NAME-<time>); -h prints the script's header comment (its lines 2 to the first
# blank comment-free line).
bench_args() {
  local name="$1"
  shift
  QUICK="" OUT=""
  for arg in "$@"; do
    case "$arg" in
      --quick) QUICK="--quick" ;;
      -h|--help) sed -n '2,/^[^#]/p' "bench/$(basename "$0")" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      -*) echo "unknown option: $arg" >&2; exit 2 ;;
      *) OUT="$arg" ;;
    esac
  done
  OUT="${OUT:-bench/out/$name-$(date +%Y%m%d-%H%M%S)}"
}

# bench_apt COMMAND:PACKAGE...: installs each package whose command is missing.
bench_apt() {
  for pkg in "$@"; do
    if ! command -v "${pkg%%:*}" >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkg#*:}" >/dev/null
    fi
  done
}

# bench_venv: bench/.venv with matplotlib (for the pictures); sets PYTHON.
bench_venv() {
  PYTHON=bench/.venv/bin/python
  if ! "$PYTHON" -c 'import matplotlib' >/dev/null 2>&1; then
    python3 -m venv bench/.venv && bench/.venv/bin/pip install -q -r bench/requirements.txt
  fi
}

# bench_build: the release binaries; sets BIN_DIR.
bench_build() {
  cargo build --release -q -p breakwater -p fake-llm -p bench-client
  BIN_DIR="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release"
}

# bench_run MODULE LIMIT_SECONDS REPORT [ARG...]: runs breakwater_bench.MODULE into OUT
# under `timeout` (its own process group), with PYTHON (default python3) and the ARGs.
bench_run() {
  local module="$1" limit="$2" report="$3"
  shift 3
  mkdir -p "$OUT"
  PYTHONPATH=bench timeout -k 15 "$limit" "${PYTHON:-python3}" -m "breakwater_bench.$module" \
    $QUICK --bin-dir "$BIN_DIR" --command "${COMMAND:-bench/$(basename "$0")${QUICK:+ $QUICK}}" \
    "$@" "$OUT" &
  RUN=$!
  trap 'kill -TERM "$RUN" 2>/dev/null || true; wait "$RUN" 2>/dev/null || true; exit 130' INT TERM
  wait "$RUN"
  echo "report: $OUT/$report" >&2
}
