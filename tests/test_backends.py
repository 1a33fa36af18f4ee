"""Backend selection, and the native and fallback engines giving identical bytes.

Cross-backend tests import both engine modules directly, whatever VPSEAL_BACKEND says; they
skip only where the native engine cannot be imported (no compiled module on this platform).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

import vpseal

keys = st.binary(min_size=32, max_size=32)
ivs = st.binary(min_size=12, max_size=12)
payloads = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda n, seed: random.Random(seed).randbytes(n),
        st.integers(0, 5000),
        st.integers(0, 2**32 - 1),
    ),
)


def _native_available() -> bool:
    try:
        import vpseal._native  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def native() -> ModuleType:
    return pytest.importorskip("vpseal._native", exc_type=ImportError)


@pytest.fixture(scope="module")
def fallback() -> ModuleType:
    # The fallback must always import (pycryptodome is a dependency): no skip here.
    from vpseal import _fallback

    return _fallback


# -- engines agree byte for byte ------------------------------------------------------------


@given(key=keys, iv=ivs, pt=payloads, aad=payloads)
def test_engines_encrypt_identically(
    native: ModuleType, fallback: ModuleType, key: bytes, iv: bytes, pt: bytes, aad: bytes
) -> None:
    n_out = native.KeyEngine(key).encrypt(iv, pt, aad)
    f_out = fallback.KeyEngine(key).encrypt(iv, pt, aad)
    assert n_out == f_out
    assert n_out == AESGCM(key).encrypt(iv, pt, aad)


@given(key=keys, iv=ivs, pt=payloads, aad=payloads)
def test_engines_decrypt_each_other(
    native: ModuleType, fallback: ModuleType, key: bytes, iv: bytes, pt: bytes, aad: bytes
) -> None:
    n_engine, f_engine = native.KeyEngine(key), fallback.KeyEngine(key)
    assert f_engine.decrypt(iv, n_engine.encrypt(iv, pt, aad), aad) == pt
    assert n_engine.decrypt(iv, f_engine.encrypt(iv, pt, aad), aad) == pt


def test_engines_agree_on_sizes(native: ModuleType, fallback: ModuleType) -> None:
    """Sizes around block boundaries and around the fallback's short/long-message switch
    (read from the module when it has one, so that retuning it keeps this test on target)."""
    switches = {2048, 4096, 5120, 8192, int(getattr(fallback, "_LONG", 2048))}
    sizes = {0, 1, 2, 15, 16, 17, 65537, 1 << 20}
    sizes |= {s + d for s in switches for d in (-17, -1, 0, 1, 16)}
    key, iv = bytes(range(32)), bytes(range(12))
    n_engine, f_engine = native.KeyEngine(key), fallback.KeyEngine(key)
    reference = AESGCM(key)
    for size in sorted(sizes):
        pt = random.Random(size).randbytes(size)
        for aad in {b"", pt[:13], pt[: max(switches) + 1]}:
            expected = reference.encrypt(iv, pt, aad)
            assert n_engine.encrypt(iv, pt, aad) == expected, (size, len(aad))
            assert f_engine.encrypt(iv, pt, aad) == expected, (size, len(aad))
            assert f_engine.decrypt(iv, expected, aad) == pt, (size, len(aad))
            assert n_engine.decrypt(iv, expected, aad) == pt, (size, len(aad))


@given(data=st.binary(max_size=3000))
def test_engines_sha256_hex(native: ModuleType, fallback: ModuleType, data: bytes) -> None:
    expected = hashlib.sha256(data).hexdigest()
    assert native.sha256_hex(data) == expected
    assert fallback.sha256_hex(data) == expected


@pytest.mark.parametrize("n", [0, 1, 2, 12, 16, 32, 1000])
def test_engines_random_bytes(native: ModuleType, fallback: ModuleType, n: int) -> None:
    for engine in (native, fallback):
        out = engine.random_bytes(n)
        assert type(out) is bytes
        assert len(out) == n
    if n >= 16:
        for engine in (native, fallback):
            assert engine.random_bytes(n) != engine.random_bytes(n)


# -- which backend is active -------------------------------------------------------------------


def test_backend_matches_environment() -> None:
    wanted = os.environ.get("VPSEAL_BACKEND", "").strip().lower()
    if wanted:
        assert vpseal.backend() == wanted
    else:  # default: native where it can be imported
        assert vpseal.backend() == ("native" if _native_available() else "fallback")


def test_openssl_version() -> None:
    version = vpseal.openssl_version()
    if vpseal.backend() == "native":
        assert isinstance(version, str)
        assert version.startswith("OpenSSL")
    else:
        assert vpseal.backend() == "fallback"
        assert version is None


_PROBE = (
    "import sys, vpseal; "
    "print(vpseal.backend(), vpseal.openssl_version() is None, 'vpseal._native' in sys.modules)"
)


def _run(backend: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VPSEAL_BACKEND"}
    env["VPSEAL_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60
    )


def test_subprocess_forces_native() -> None:
    if not _native_available():
        pytest.skip("native engine not importable here")
    proc = _run("native")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["native", "False", "True"]


def test_subprocess_forces_fallback() -> None:
    proc = _run("fallback")
    assert proc.returncode == 0, proc.stderr
    # forcing the fallback does not even load the native engine
    assert proc.stdout.split() == ["fallback", "True", "False"]


@pytest.mark.parametrize("value", ["bogus", "openssl", "native,fallback"])
def test_subprocess_bogus_backend(value: str) -> None:
    proc = _run(value)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "ImportError" in proc.stderr
    assert "VPSEAL_BACKEND" in proc.stderr
