"""AES-256-GCM per call: vpseal native and fallback against cryptography's AESGCM and
pycryptodome used naively (AES.new per message), at 64 B, 1 KiB, 16 KiB and 1 MiB."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from conftest import SHORT
from Crypto.Cipher import AES
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import vpseal

KEY = bytes(range(32))
IV = bytes(range(12))
SIZES = {"64 B": 64, "1 KiB": 1024, "16 KiB": 16384, "1 MiB": 1 << 20}
IMPLS = ["native", "fallback", "cryptography", "pycryptodome-naive"]


def _native_available() -> bool:
    try:
        vpseal.AesGcm(KEY, backend="native")
    except ImportError:
        return False
    return True


def _ops(impl: str) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    if impl in ("native", "fallback"):
        if impl == "native" and not _native_available():
            pytest.skip("native engine not built")
        box = vpseal.AesGcm(KEY, backend=impl)
        return (lambda d: box.encrypt(IV, d)), (lambda d: box.decrypt(IV, d))
    if impl == "cryptography":
        aead = AESGCM(KEY)
        return (lambda d: aead.encrypt(IV, d, None)), (lambda d: aead.decrypt(IV, d, None))

    def encrypt(d: bytes) -> bytes:
        ct, tag = AES.new(KEY, AES.MODE_GCM, nonce=IV).encrypt_and_digest(d)
        return ct + tag

    def decrypt(d: bytes) -> bytes:
        return AES.new(KEY, AES.MODE_GCM, nonce=IV).decrypt_and_verify(d[:-16], d[-16:])

    return encrypt, decrypt


def _run(benchmark: Any, fn: Callable[[bytes], bytes], data: bytes) -> None:
    if SHORT:
        benchmark.pedantic(fn, args=(data,), rounds=3, iterations=10 if len(data) < 65536 else 1)
    else:
        benchmark(fn, data)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size", list(SIZES))
def test_encrypt(benchmark: Any, impl: str, size: str) -> None:
    encrypt, _ = _ops(impl)
    data = os.urandom(SIZES[size])
    benchmark.group = f"encrypt {size}"
    benchmark.extra_info["impl"] = impl
    assert encrypt(data) == AESGCM(KEY).encrypt(IV, data, None)
    _run(benchmark, encrypt, data)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("size", list(SIZES))
def test_decrypt(benchmark: Any, impl: str, size: str) -> None:
    _, decrypt = _ops(impl)
    plain = os.urandom(SIZES[size])
    sealed = AESGCM(KEY).encrypt(IV, plain, None)
    benchmark.group = f"decrypt {size}"
    benchmark.extra_info["impl"] = impl
    assert decrypt(sealed) == plain
    _run(benchmark, decrypt, sealed)
