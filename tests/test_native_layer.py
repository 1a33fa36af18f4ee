"""The native layer: the two C length formulas it mirrors in Python (to save a call per
request) pinned to the C functions; the known-answer self-test that lets C write into fresh
bytes objects, and the engine refusing to load (with the reason) where that would not work;
and the lengths C checks itself."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpseal._protocol import OPEN_OK

native = pytest.importorskip("vpseal._native", exc_type=ImportError)


@given(st.integers(min_value=1, max_value=1 << 24))
def test_body_len_matches_c(n: int) -> None:
    assert native._body_len(n) == native.lib.vp_body_len(n)


@given(st.binary(max_size=300))
def test_plaintext_len_matches_c_on_any_bytes(body: bytes) -> None:
    assert native._plaintext_len(body) == native.lib.vp_plaintext_len(body, len(body))


@pytest.mark.parametrize("pad", ["", "=", "==", "A=", "=A", "==="])
@pytest.mark.parametrize("length", [0, 1, 4, 40, 44, 45, 48, 100])
def test_plaintext_len_matches_c_on_body_shapes(pad: str, length: int) -> None:
    body = ('{"cipherText":"' + "A" * length + pad + '"}').encode()
    assert native._plaintext_len(body) == native.lib.vp_plaintext_len(body, len(body))


# -- outputs written by C: only where verified (item 1 of issue 9) ------------------------------

def test_self_test_passes_here() -> None:
    assert native._self_test() is None


def test_self_test_request_is_a_real_known_answer() -> None:
    """The sealed request the self-test expects, recomputed with hashlib, base64 and pyca."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ct_tag = AESGCM(native._KAT_KEY).encrypt(native._KAT_IV, native._KAT_PAYLOAD, None)
    wire = b"".join(map(base64.b64encode, (native._KAT_IV, ct_tag[-16:], ct_tag[:-16])))
    body = b'{"cipherText":"' + wire + b'"}'
    signed = native._KAT_AGENT + native._KAT_TS + native._KAT_NONCE + body
    assert body == native._KAT_BODY
    assert hashlib.sha256(signed).hexdigest() == native._KAT_SIGNATURE
    gcm = AESGCM(native._KAT_KEY)
    assert gcm.encrypt(native._KAT_IV, native._KAT_PT, None) == native._KAT_CT_TAG
    with_aad = gcm.encrypt(native._KAT_IV, native._KAT_PT[:60], native._KAT_AAD)
    assert with_aad == native._KAT_CT_TAG[:60] + native._KAT_TAG_16


def _copying(fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn as PyPy's cffi runs it: every bytes argument reaches C as a copy, so what C writes
    into an output bytes object is never seen."""

    def call(*args: Any) -> Any:
        return fn(*[bytes(bytearray(a)) if type(a) is bytes else a for a in args])

    return call


@pytest.mark.parametrize(
    "name",
    ["_encrypt", "_decrypt", "_encrypt_noaad", "_decrypt_noaad", "_seal", "_seal_fixed", "_open"],
)
def test_self_test_notices_outputs_c_did_not_write(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(native, name, _copying(getattr(native, name)))
    assert native._self_test() is not None


_IMPORT_PROBE = """
import sys, vpseal
from vpseal import _backend
print(vpseal.backend())
print(_backend.native_error)
"""

# Stands in for the compiled module: the real one, except that every bytes argument reaches
# C as a copy (PyPy's behaviour).
_COPYING_LIB = """
import glob, importlib.machinery, importlib.util, os, sys
package = importlib.util.find_spec("vpseal").submodule_search_locations[0]  # not imported yet
path = glob.glob(os.path.join(package, "_vpseal_native*"))[0]
loader = importlib.machinery.ExtensionFileLoader("vpseal._vpseal_native", path)
real = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
loader.exec_module(real)
class Lib:
    def __getattr__(self, name):
        fn = getattr(real.lib, name)
        if not callable(fn):
            return fn
        def call(*args):
            return fn(*[bytes(bytearray(a)) if type(a) is bytes else a for a in args])
        return call
class Module:
    ffi = real.ffi
    lib = Lib()
sys.modules["vpseal._vpseal_native"] = Module()
"""


def _probe(prelude: str, backend: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VPSEAL_BACKEND"}
    if backend:
        env["VPSEAL_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, "-c", prelude + _IMPORT_PROBE],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("prelude", "reason"),
    [
        ("import sys; sys.implementation.name = 'pypy'\n", "runs only on CPython"),
        (_COPYING_LIB, "failed its known-answer self-test"),
    ],
    ids=["not-cpython", "outputs-not-written"],
)
def test_native_engine_refuses_to_load_with_the_reason(prelude: str, reason: str) -> None:
    chosen = _probe(prelude, "")
    assert chosen.returncode == 0, chosen.stderr
    name, why = chosen.stdout.splitlines()
    assert name == "fallback"
    assert reason in why
    forced = _probe(prelude, "native")
    assert forced.returncode != 0
    assert "ImportError" in forced.stderr and reason in forced.stderr


# -- lengths: C checks every buffer's length against the others (item 3) -----------------------

KEY = native.KeyEngine(bytes(32))


def _sealed() -> tuple[bytes, bytes, int]:
    body, ts, nonce, sig = KEY.seal(0, b"agent", b'{"a":1}')
    return body, (ts + nonce + sig).encode(), len(ts)


def test_c_open_answers_a_split_that_does_not_fit() -> None:
    body, headers, ts_len = _sealed()
    n = native._plaintext_len(body)
    out = native.ffi.new("char[]", n)
    lib = native.lib
    args = (KEY._key, 0, b"agent", 5, headers, len(headers))
    tail = (body, len(body), out, n)
    assert lib.vp_open(*args, ts_len, 32, *tail) == lib.VP_OK
    assert lib.vp_open(*args, len(headers) + 1, 0, *tail) == lib.VP_BAD_TIMESTAMP
    assert lib.vp_open(*args, ts_len, len(headers) - ts_len + 1, *tail) == lib.VP_BAD_NONCE
    assert lib.vp_open(*args, 2**64 - 1, 2, *tail) == lib.VP_BAD_TIMESTAMP
    assert lib.vp_open(*args, 5, 2**64 - 1, *tail) == lib.VP_BAD_NONCE


def test_c_seal_many_checks_the_plaintext_total() -> None:
    lib, ffi = native.lib, native.ffi
    lens = [3, 4]
    total = sum(native._body_len(n) for n in lens)
    bodies, metas = ffi.new("char[]", total), ffi.new("char[]", 2 * native._META)
    for claimed in (6, 8, 0):  # the pieces say 7 bytes
        rc = lib.vp_seal_many(
            KEY._key, 0, b"a", 1, 2, b"abcdefg", claimed, lens, bodies, total, metas,
            2 * native._META,
        )  # fmt: skip
        assert rc == lib.VP_ERR_ARG
    rc = lib.vp_seal_many(
        KEY._key, 0, b"a", 1, 2, b"abcdefg", 7, lens, bodies, total, metas,
        2 * native._META - 1,
    )  # fmt: skip
    assert rc == lib.VP_ERR_ARG


def test_c_refuses_lengths_beyond_gcm_without_reading() -> None:
    """Lengths C is told are checked before any byte is read: a 2^36-byte claim about a
    one-byte buffer is refused, not read past."""
    lib = native.lib
    out = native.ffi.new("char[]", 32)
    huge = 1 << 36
    rc = lib.vp_encrypt(KEY._key, bytes(12), 12, b"", 0, b"x", huge, out, huge + 16)
    assert rc == lib.VP_ERR_ARG
    rc = lib.vp_decrypt(KEY._key, bytes(12), 12, b"", 0, b"x", huge + 16, out, huge)
    assert rc == lib.VP_ERR_ARG


def test_c_sha256_checks_the_output_length() -> None:
    out = native.ffi.new("char[]", 64)
    assert native.lib.vp_sha256_hex(b"abc", 3, out, 63) == native.lib.VP_ERR_ARG
    assert native.lib.vp_sha256_hex(b"abc", 3, out, 64) == native.lib.VP_OK


@given(cut=st.integers(0, 12), pad=st.sampled_from(["", "=", "==", "A=", "A==", "==="]))
def test_open_sizes_its_output_as_c_expects(cut: int, pad: str) -> None:
    """open() sizes its output from the body (vp_plaintext_len, inlined): for bodies cut short,
    re-padded and re-signed (so that they reach the wire decoder), its verdict is the
    fallback's."""
    from vpseal import _fallback

    body, headers, ts_len = _sealed()
    shaped = body[: len(body) - 2 - cut] + pad.encode() + b'"}'
    signed = b"agent" + headers[: ts_len + 32] + shaped
    headers = headers[: ts_len + 32] + hashlib.sha256(signed).hexdigest().encode()
    mine = KEY.open(0, b"agent", headers, ts_len, 32, shaped)
    assert mine == _fallback.KeyEngine(bytes(32)).open(0, b"agent", headers, ts_len, 32, shaped)
    assert mine[0] != OPEN_OK or (shaped == body and mine[1] == b'{"a":1}')
