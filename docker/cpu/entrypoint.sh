#!/bin/sh
# KeyDNN CPU image entrypoint: print `python -m keydnn info`, then run the command.
#   (none) | test [pytest args]   the test suite (pytest -n auto)
#   report [args]                 python -m keydnn report [args]
#   anything else                 run as given (e.g. bash, python script.py)
set -eu
PYTHON="${KEYDNN_PYTHON:-python}"
cd "${KEYDNN_APP_DIR:-/app}"
"$PYTHON" -m keydnn info
cmd="${1:-test}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
  test) exec "$PYTHON" -m pytest -q -p no:cacheprovider -n "${KEYDNN_TEST_WORKERS:-auto}" "$@" ;;
  report) exec "$PYTHON" -m keydnn report "$@" ;;
  *) exec "$cmd" "$@" ;;
esac
