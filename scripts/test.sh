#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, builds the native engine, and runs the
# whole suite against both backends, then the benchmarks once in short mode.
#   bash scripts/test.sh            # full run
#   VPSEAL_SKIP_BENCH=1 bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VPSEAL_VENV:-.venv-test}

step() { printf '\n==> %s\n' "$*"; }

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

step "virtualenv $VENV with vpseal[dev] (builds the native engine)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q ".[dev]"
VPSEAL_BACKEND=native "$VENV/bin/python" -c \
  'import vpseal; print("native engine:", vpseal.backend(), "-", vpseal.openssl_version())'

REDIS_PORT=${VPSEAL_REDIS_PORT:-6390}
if command -v redis-server >/dev/null 2>&1; then
  step "redis-server on 127.0.0.1:$REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "/tmp/vpseal-redis-$REDIS_PORT.pid" >/dev/null
  trap 'kill "$(cat /tmp/vpseal-redis-'"$REDIS_PORT"'.pid)" 2>/dev/null || true' EXIT
  export VPSEAL_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

step "lint and types"
"$VENV/bin/ruff" check src tests bench setup.py csrc/build.py
"$VENV/bin/mypy" --strict src/vpseal

for backend in native fallback; do
  step "tests, VPSEAL_BACKEND=$backend"
  VPSEAL_BACKEND=$backend "$VENV/bin/python" -m pytest tests -q -p no:cacheprovider
done

if [ -z "${VPSEAL_SKIP_BENCH:-}" ]; then
  step "benchmarks (short mode, so that they cannot rot)"
  VPSEAL_BENCH_SHORT=1 "$VENV/bin/python" -m pytest bench -q -p no:cacheprovider
fi
