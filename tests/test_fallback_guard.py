"""The fallback's guard on pycryptodome internals (issue 10 item 3): when the GHASH internals
are missing or give wrong answers, the fallback encrypts through pycryptodome's public GCM API
instead, slower and byte-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vpseal import _fallback
from vpseal._protocol import OPEN_BAD_TAG, OPEN_OK, SCHEME_PIPE, SCHEME_TRANSFER
from vpseal.errors import InvalidTag

KEY = bytes(range(32))
IV = bytes(range(100, 112))
# Around block boundaries and around the fast engine's short/long switch.
SIZES = [0, 1, 15, 16, 17, 63, 64, 1000, _fallback._LONG - 1, _fallback._LONG,
         _fallback._LONG + 1, 3 * _fallback._LONG + 7]  # fmt: skip


def _cases() -> list[tuple[bytes, bytes | None]]:
    out: list[tuple[bytes, bytes | None]] = []
    for n in SIZES:
        pt = bytes((i * 7 + n) & 0xFF for i in range(n))
        out.append((pt, None))
        out.append((pt, pt[: n // 3 + 1]))
    return out


def test_fast_path_in_use_here() -> None:
    """This pycryptodome passes the known answers: the guard must not cost the fast path."""
    assert _fallback.PUBLIC_GCM_REASON is None
    assert _fallback.KeyEngine is _fallback._FastKeyEngine


@pytest.mark.parametrize(("pt", "aad"), _cases(), ids=lambda v: str(len(v or b"")))
def test_public_path_is_byte_identical(pt: bytes, aad: bytes | None) -> None:
    fast = _fallback._FastKeyEngine(KEY)
    public = _fallback._PublicKeyEngine(KEY)
    sealed = public.encrypt(IV, pt, aad)
    assert sealed == fast.encrypt(IV, pt, aad) == AESGCM(KEY).encrypt(IV, pt, aad)
    assert public.decrypt(IV, sealed, aad) == pt
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(InvalidTag):
        public.decrypt(IV, tampered, aad)


@pytest.mark.parametrize("scheme", [SCHEME_TRANSFER, SCHEME_PIPE])
def test_public_path_seals_and_opens_identically(scheme: int) -> None:
    fast = _fallback._FastKeyEngine(KEY)
    public = _fallback._PublicKeyEngine(KEY)
    fixed = (b"1769746894501", b"56ffd5ecd8a3a4457863a0bd7c298fb2", IV)
    sealed = public.seal(scheme, b"agent", b'{"a":1}', *fixed)
    assert sealed == fast.seal(scheme, b"agent", b'{"a":1}', *fixed)
    body, ts, nonce, sig = sealed
    headers = (ts + nonce + sig).encode()
    assert public.open(scheme, b"agent", headers, len(ts), 32, body) == (OPEN_OK, b'{"a":1}')
    items = [(public, scheme, b"agent", headers, len(ts), 32, body)]
    assert _fallback.KeyEngine.open_batch(items) == [(OPEN_OK, b'{"a":1}')]  # type: ignore[arg-type]
    other = _fallback._PublicKeyEngine(bytes(32))
    assert other.open(scheme, b"agent", headers, len(ts), 32, body) == (OPEN_BAD_TAG, None)


def test_wrong_internals_fail_the_known_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """An internal that still runs but computes something else (here: GHASH off by one bit) is
    caught by the known-answer check, which is what selects the public path at import."""
    real = _fallback._make_ghash

    def lying(h: Any) -> Any:
        ghash, parts = real(h)

        def wrong(data: bytes) -> bytes:
            y = bytearray(ghash(data))
            y[0] ^= 1
            return bytes(y)

        return wrong, parts

    monkeypatch.setattr(_fallback, "_make_ghash", lying)
    reason = _fallback._known_answers(_fallback._FastKeyEngine)
    assert reason is not None and "known answer" in reason
    assert _fallback._known_answers(_fallback._PublicKeyEngine) is None


def test_missing_internals_fail_the_known_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fallback, "_GHASH_LIB", None)
    reason = _fallback._known_answers(_fallback._FastKeyEngine)
    assert reason is not None and "AttributeError" in reason


# In a fresh interpreter, before vpseal is imported: _mode_gcm keeps only what pycryptodome's
# own AES.new needs (its GCM factory); the GHASH libraries vpseal reads are gone, as if a
# release had moved them.
_GONE = """
import json, sys, types
import Crypto.Cipher
from Crypto.Cipher import _mode_gcm as real
moved = types.ModuleType("Crypto.Cipher._mode_gcm")
moved._create_gcm_cipher = real._create_gcm_cipher
Crypto.Cipher._mode_gcm = sys.modules["Crypto.Cipher._mode_gcm"] = moved
import vpseal
from vpseal import _fallback
cases = json.loads(sys.stdin.read())
engine = _fallback.KeyEngine(bytes.fromhex(cases["key"]))
out = [engine.encrypt(bytes.fromhex(cases["iv"]), bytes.fromhex(p),
                      None if a is None else bytes.fromhex(a)).hex() for p, a in cases["items"]]
sealed = vpseal.AesGcm(bytes(32)).encrypt(bytes(12), b"through the public class")
print(json.dumps({"reason": _fallback.PUBLIC_GCM_REASON, "class": _fallback.KeyEngine.__name__,
                  "backend": vpseal.backend(), "out": out, "aesgcm": sealed.hex()}))
"""


def test_import_without_internals_uses_public_api_with_identical_bytes() -> None:
    cases = _cases()
    payload = {
        "key": KEY.hex(),
        "iv": IV.hex(),
        "items": [(p.hex(), None if a is None else a.hex()) for p, a in cases],
    }
    env = {**os.environ, "VPSEAL_BACKEND": "fallback"}
    proc = subprocess.run(
        [sys.executable, "-c", _GONE], input=json.dumps(payload),
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["backend"] == "fallback"
    assert got["class"] == "_PublicKeyEngine"
    assert "GHASH" in got["reason"]
    fast = _fallback._FastKeyEngine(KEY)
    assert got["out"] == [fast.encrypt(IV, p, a).hex() for p, a in cases]
    expected = AESGCM(bytes(32)).encrypt(bytes(12), b"through the public class", None)
    assert got["aesgcm"] == expected.hex()
