#!/bin/sh
# KeyDNN CUDA image entrypoint: print `python -m keydnn info` and the CUDA wheel versions, then run the command.
#   (none) | cuda [pytest args]   the CUDA tests with KEYDNN_REQUIRE_CUDA=1 (fail, never skip), then the
#                                 report into $KEYDNN_REPORT_DIR (/out); exits non-zero if either failed
#   test [pytest args]            the whole test suite
#   report [args]                 python -m keydnn report [args]
#   anything else                 run as given
# It also runs outside a container (a GPU host without a container runtime), from a checkout whose native
# libraries are built, e.g.:
#   KEYDNN_APP_DIR=$PWD KEYDNN_PYTHON=python3 KEYDNN_REPORT_DIR=$PWD/reports/cuda-entrypoint sh docker/cuda/entrypoint.sh
set -eu
PYTHON="${KEYDNN_PYTHON:-python}"
APP="${KEYDNN_APP_DIR:-/app}"
OUT="${KEYDNN_REPORT_DIR:-/out}"
PINS="${KEYDNN_CUDA_PINS:-$APP/docker/cuda/runtime.txt}"
cd "$APP"
"$PYTHON" -m keydnn info
# The image installs exactly these pins; outside it, say where the interpreter's wheels differ.
"$PYTHON" - "$PINS" <<'PY'
import sys
from importlib import metadata
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, pinned = line.split("==")
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        have = "not installed"
    print(f"cuda wheel {name}: pinned {pinned}, installed {have}{'' if have == pinned else '  (DIFFERS)'}")
PY
cmd="${1:-cuda}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
  cuda)
    mkdir -p "$OUT" 2>/dev/null || true
    if ! [ -w "$OUT" ]; then
      echo "keydnn: cannot write to $OUT; mount a folder you own and add --user \"\$(id -u):\$(id -g)\"" >&2
      exit 2
    fi
    "$PYTHON" -m keydnn info --json > "$OUT/keydnn-info.json"
    set +e
    KEYDNN_REQUIRE_CUDA=1 "$PYTHON" -m pytest -m cuda -q -p no:cacheprovider \
      --junitxml="$OUT/cuda-tests.junit.xml" "$@"
    tests_rc=$?
    # shellcheck disable=SC2086  # KEYDNN_REPORT_ARGS is a list of words on purpose
    "$PYTHON" -m keydnn report ${KEYDNN_REPORT_ARGS:---out "$OUT"}
    report_rc=$?
    echo "keydnn: CUDA tests exit $tests_rc, report exit $report_rc; outputs in $OUT"
    [ "$tests_rc" -eq 0 ] && [ "$report_rc" -eq 0 ]
    ;;
  test) exec "$PYTHON" -m pytest -q -p no:cacheprovider -n "${KEYDNN_TEST_WORKERS:-auto}" "$@" ;;
  report) exec "$PYTHON" -m keydnn report "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
