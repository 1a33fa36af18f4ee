#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, builds the native engine, and runs the
# suite on every CPython vpseal supports (3.10-3.13) that the machine has, then the benchmarks
# once in short mode.
#   bash scripts/test.sh                              # full run (what CI runs: .ci/run)
#   VPSEAL_SKIP_BENCH=1 bash scripts/test.sh          # without the benchmarks
#   VPSEAL_PYTHONS= bash scripts/test.sh              # the main Python only
#   VPSEAL_PYTHONS="3.10 3.13" bash scripts/test.sh   # the main Python and these
#   VPSEAL_TEST_SERIAL=1 bash scripts/test.sh         # the other Pythons after the main one
#
# The matrix, sized to keep .ci/run well under 30 minutes on 2 cores (one full pass of the suite
# takes about 5 minutes there, mostly waiting on timeouts, sandboxes and subprocesses):
#   - main Python ($PYTHON, default python3; 3.11 on CI), virtualenv .venv-test: ruff; mypy
#     --strict against the main Python's standard library and against 3.10's (which catches
#     3.11+ APIs such as a2b_base64's strict_mode); the whole suite with VPSEAL_BACKEND=native
#     and again with VPSEAL_BACKEND=fallback; the benchmarks in short mode, last and alone.
#   - every other Python of $VPSEAL_PYTHONS found (python3.X on PATH, else pyenv's newest 3.X),
#     each in its own virtualenv .venv-test-3.X with vpseal[dev] (its own native build), with
#     the "dev" Hypothesis profile (25 examples per property instead of 300: these runs look for
#     what differs between Pythons, the main runs explore inputs):
#       * the whole suite with VPSEAL_BACKEND=native. Tests that name an engine run both
#         engines here too (vectors, envelope, tamper, replay and batches are parametrized over
#         native and fallback).
#       * with VPSEAL_BACKEND=fallback, the modules where the process-wide engine is what is
#         tested ($FALLBACK_SUBSET): engine selection, vectors, envelope, wire, and the sandbox
#         sealing and opening over HTTP on that engine.
#     A run keeps about half a core busy, so the other Pythons run one after another in the
#     background while the main Python's two runs go (on Redis database 1 instead of 0); their
#     output is printed when the main runs are done and kept in .venv-test-logs/.
# All virtualenvs are built first, one at a time. A Python that is not found is reported as
# skipped (at the start and in the summary). Set-up failures stop the script; a failing test
# run does not stop the others, and the script exits non-zero at the end. The summary lists
# every run with its time.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VPSEAL_VENV:-.venv-test}
PYTHONS=${VPSEAL_PYTHONS-3.10 3.11 3.12 3.13}
FALLBACK_SUBSET=(tests/test_backends.py tests/test_vectors.py tests/test_envelope.py
  tests/test_wire.py tests/test_wire_base64.py tests/test_sandbox.py)
PYTEST=(-m pytest -q -p no:cacheprovider)

step() { printf '\n==> %s\n' "$*"; }
elapsed() { local s=$(($(date +%s) - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
START=$(date +%s)

# X.Y of an interpreter, or nothing when it does not run (e.g. a pyenv shim for a version
# that is installed but not selected).
minor_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true; }

# An interpreter for Python X.Y that can make virtualenvs, or nothing.
find_python() {
  local want=$1 cand root
  root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
  for cand in "$(command -v "python$want" 2>/dev/null || true)" \
      $(ls -d "$root/versions/$want".*[0-9]/bin/python"$want" 2>/dev/null | sort -rV); do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    [ "$(minor_of "$cand")" = "$want" ] || continue
    "$cand" -c 'import venv, ensurepip' 2>/dev/null || continue
    echo "$cand"
    return 0
  done
  return 0
}

# Debian packages: OpenSSL headers for the native build, redis-server for the shared nonce store.
need=()
[ -f /usr/include/openssl/evp.h ] || need+=(libssl-dev)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "warning: missing ${need[*]} and cannot apt-get install them" >&2
  fi
fi

MAIN_MINOR=$(minor_of "$PY")
[ -n "$MAIN_MINOR" ] || { echo "error: cannot run $PY" >&2; exit 1; }
extra_minors=() extra_pythons=() skipped=()
for want in $PYTHONS; do
  [ "$want" = "$MAIN_MINOR" ] && continue
  found=$(find_python "$want")
  if [ -n "$found" ]; then
    extra_minors+=("$want") extra_pythons+=("$found")
  else
    skipped+=("$want")
  fi
done
step "Pythons: main $MAIN_MINOR ($PY, full suite on both engines)"
for i in "${!extra_minors[@]}"; do
  echo "    ${extra_minors[$i]}: ${extra_pythons[$i]} (full suite on native, fallback subset)"
done
for want in "${skipped[@]}"; do
  echo "    $want: SKIPPED, no python$want on PATH or under pyenv (with venv and ensurepip)"
done

# make_venv DIR PYTHON: a virtualenv of that Python with vpseal[dev], native engine included.
make_venv() {
  local dir=$1 py=$2 want
  want=$(minor_of "$py")
  if [ -x "$dir/bin/python" ] && [ "$(minor_of "$dir/bin/python")" = "$want" ]; then :
  else
    "$py" -m venv --clear "$dir"
  fi
  "$dir/bin/python" -m pip install -q --upgrade pip
  "$dir/bin/python" -m pip install -q ".[dev]"
  VPSEAL_BACKEND=native "$dir/bin/python" -c 'import sys, vpseal
print("Python %d.%d" % sys.version_info[:2], "native engine:", vpseal.backend(), "-",
      vpseal.openssl_version())'
}

step "virtualenv $VENV with vpseal[dev] (builds the native engine)"
make_venv "$VENV" "$PY"
for i in "${!extra_minors[@]}"; do
  step "virtualenv $VENV-${extra_minors[$i]} with vpseal[dev] (Python ${extra_minors[$i]})"
  make_venv "$VENV-${extra_minors[$i]}" "${extra_pythons[$i]}"
done

other_pid='' redis_pidfile=''
cleanup() {
  if [ -n "$other_pid" ]; then kill -- "-$other_pid" 2>/dev/null || true; fi
  if [ -n "$redis_pidfile" ]; then kill "$(cat "$redis_pidfile")" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

REDIS_PORT=${VPSEAL_REDIS_PORT:-6390}
redis_base=''
if command -v redis-server >/dev/null 2>&1; then
  step "redis-server on 127.0.0.1:$REDIS_PORT"
  redis_pidfile="/tmp/vpseal-redis-$REDIS_PORT.pid"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$redis_pidfile" >/dev/null
  redis_base="redis://127.0.0.1:$REDIS_PORT"
  export VPSEAL_REDIS_URL="$redis_base/0"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

step "lint and types"
"$VENV/bin/ruff" check src tests bench setup.py csrc/build.py
"$VENV/bin/mypy" --strict src/vpseal
# The standard library as the oldest supported Python has it (e.g. no strict_mode= on 3.10).
"$VENV/bin/mypy" --strict --python-version 3.10 src/vpseal

step "documentation site (mkdocs build --strict)"
VPSEAL_VENV="$VENV" PYTHON="$PY" bash scripts/docs.sh

LOGS="$VENV-logs"
rm -rf "$LOGS" && mkdir -p "$LOGS" && : >"$LOGS/results.main" && : >"$LOGS/results.other"

# run_tests LANE LABEL PYTHON BACKEND PROFILE [PATHS...]: one pytest run (PROFILE: a Hypothesis
# profile of tests/conftest.py, or "" for the default), its result kept for the summary
# (set-up failures above stop the script; a failing test run does not stop the next).
run_tests() {
  local lane=$1 label=$2 py=$3 backend=$4 profile=$5 started rc=0
  shift 5
  step "tests, $label"
  started=$(date +%s)
  env ${profile:+HYPOTHESIS_PROFILE=$profile} VPSEAL_BACKEND="$backend" \
    "$py" "${PYTEST[@]}" "${@:-tests}" || rc=$?
  printf '%-48s %s  %s\n' "$label" "$([ $rc = 0 ] && echo ok || echo "FAILED ($rc)")" \
    "$(elapsed "$started")" >>"$LOGS/results.$lane"
}

# The other Pythons, one after another, on a Redis database of their own.
other_pythons() {
  if [ -n "$redis_base" ]; then export VPSEAL_REDIS_URL="$redis_base/1"; fi
  local i minor py
  for i in "${!extra_minors[@]}"; do
    minor=${extra_minors[$i]} py="$VENV-${extra_minors[$i]}/bin/python"
    run_tests other "Python $minor, VPSEAL_BACKEND=native" "$py" native dev
    run_tests other "Python $minor, VPSEAL_BACKEND=fallback (subset)" "$py" fallback dev \
      "${FALLBACK_SUBSET[@]}"
  done
}

# The suite mostly waits (timeouts, sandboxes, subprocesses): one run keeps about half a core
# busy, so the other Pythons run alongside the main ones (their output follows them) unless
# VPSEAL_TEST_SERIAL is set.
if [ ${#extra_minors[@]} -gt 0 ] && [ -z "${VPSEAL_TEST_SERIAL:-}" ]; then
  step "Pythons ${extra_minors[*]}: in the background, output in $LOGS/other-pythons.log"
  set -m  # a process group of its own, so that cleanup can stop all of it
  other_pythons >"$LOGS/other-pythons.log" 2>&1 &
  other_pid=$!
  set +m
fi

for backend in native fallback; do
  run_tests main "Python $MAIN_MINOR, VPSEAL_BACKEND=$backend" "$VENV/bin/python" "$backend" ""
done

if [ -n "$other_pid" ]; then
  step "waiting for Pythons ${extra_minors[*]}"
  wait "$other_pid" || true
  other_pid=''
  cat "$LOGS/other-pythons.log"
else
  other_pythons
fi

# --- packaging (issue 10): the sdist and the wheel built, checked and tested as installed ------
if [ -z "${VPSEAL_SKIP_DIST:-}" ]; then
  step "sdist and wheel: scripts/check_dist.sh"
  dist_started=$(date +%s) dist_rc=0
  bash scripts/check_dist.sh "$VENV/bin/python" || dist_rc=$?
  printf '%-48s %s  %s\n' "sdist and wheel (scripts/check_dist.sh)" \
    "$([ $dist_rc = 0 ] && echo ok || echo "FAILED ($dist_rc)")" "$(elapsed "$dist_started")" \
    >>"$LOGS/results.main"
fi
# ---------------------------------------------------------------------------------------------

if [ -z "${VPSEAL_SKIP_BENCH:-}" ]; then
  step "benchmarks (short mode, so that they cannot rot)"
  VPSEAL_BENCH_SHORT=1 "$VENV/bin/python" "${PYTEST[@]}" bench
  step "instruction-count performance gate (callgrind)"
  VPSEAL_VENV="$VENV" bash scripts/perf_gate.sh
fi

step "summary ($(elapsed "$START") in all)"
sed 's/^/    /' "$LOGS/results.main" "$LOGS/results.other"
for want in "${skipped[@]}"; do
  echo "    Python $want: SKIPPED (not on this machine)"
done
if grep -q FAILED "$LOGS/results.main" "$LOGS/results.other"; then exit 1; fi
