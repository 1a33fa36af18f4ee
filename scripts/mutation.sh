#!/usr/bin/env bash
# Mutation testing of wire, signing, replay, envelope, _client_core and _fallback (issue 13).
#
#   bash scripts/mutation.sh                      # every module, every mutant; writes
#                                                 # tests/mutation/REPORT.md (long: see there)
#   bash scripts/mutation.sh wire signing         # some modules
#   bash scripts/mutation.sh --bounded            # the CI-sized run: 12 sampled mutants per
#                                                 # module (a new sample each day), about 10 min
#                                                 # on 2 cores; add --changed origin/main to
#                                                 # run only modules whose source/tests changed
#   bash scripts/mutation.sh --sample 40 --seed x # any sample
#
# Tool: cosmic-ray (installed here if missing). Each module is mutated in a scratch copy of
# src/ and tests/ (the working tree is never touched), against the test files mapped to it in
# scripts/mutation.py (MODULES). Exits 1 when a mutant survives that is not recorded in
# tests/mutation/equivalent.txt ("module | operator | line text | n | reason": copy the key
# from the report and give the reason why no test can tell it from the original).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" -c 'import cosmic_ray' 2>/dev/null || "$PY" -m pip install -q 'cosmic-ray>=8.4,<9'
args=()
report=tests/mutation/REPORT.md
for a in "$@"; do
  if [ "$a" = --bounded ]; then
    args+=(--sample "${VPSEAL_MUTATION_SAMPLE:-12}" --seed "$(date -u +%F)")
    report=${VPSEAL_MUTATION_REPORT:-.mutation-report.md}
  else
    args+=("$a")
  fi
done
exec nice -n 10 "$PY" scripts/mutation.py --report "$report" "${args[@]}"
