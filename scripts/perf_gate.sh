#!/usr/bin/env bash
# The instruction-count performance gate (issue 13): installs valgrind if it is missing, tests
# the gate itself (tests/test_perf_gate.py: a slowed operation must fail), then counts every
# operation under callgrind and compares with bench/callgrind/baseline.json. Exits non-zero
# when an operation costs more than 3 % over its baseline (only warns when the environment
# differs from the baseline's). About 1-2 minutes on 2 cores.
#   bash scripts/perf_gate.sh                  # after scripts/test.sh (uses .venv-test)
#   VPSEAL_GATE_RECORD=1 bash scripts/perf_gate.sh   # also append to the history (main)
#   VPSEAL_VENV=.venv bash scripts/perf_gate.sh
# Re-baseline (then commit bench/callgrind/baseline.json):
#   .venv-test/bin/python -m bench.callgrind --update
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VPSEAL_VENV:-.venv-test}
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "error: no $PY (run scripts/test.sh first, or set VPSEAL_VENV)" >&2; exit 2; }

if ! command -v valgrind >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    printf '\n==> installing valgrind\n'
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
  else
    echo "error: valgrind is missing and cannot be installed here" >&2
    exit 2
  fi
fi

printf '\n==> the gate catches a slowed operation (tests/test_perf_gate.py)\n'
VPSEAL_PERF_GATE_TEST=1 "$PY" -m pytest -q -p no:cacheprovider tests/test_perf_gate.py

printf '\n==> instruction-count gate (callgrind)\n'
"$PY" -m bench.callgrind ${VPSEAL_GATE_RECORD:+--record}
