"""AES-256-GCM with a key object that does its per-key work once (the AESGCM shape)."""

from __future__ import annotations

from vpseal._backend import select
from vpseal.errors import InvalidTag

KEY_SIZE = 32
IV_SIZE = 12
TAG_SIZE = 16


def _require_bytes(name: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


class AesGcm:
    """AES-256-GCM: 32-byte key, 12-byte IV, 16-byte tag appended to the ciphertext.

    One object may be used from several threads at once. The caller owns IV uniqueness here;
    the whole-request API (seal_request) draws IVs itself.
    """

    __slots__ = ("_decrypt", "_encrypt", "_engine")

    def __init__(self, key: bytes, *, backend: str | None = None) -> None:
        """backend: None for the process-wide engine (vpseal.backend()), or "native" /
        "fallback" for this object alone (cross-checks, benchmarks)."""
        key = _require_bytes("key", key)
        if len(key) != KEY_SIZE:
            raise ValueError(f"key must be {KEY_SIZE} bytes, got {len(key)}")
        self._engine = select(backend).KeyEngine(key)
        self._encrypt = self._engine.encrypt  # bound once: this is a hot path
        self._decrypt = self._engine.decrypt

    def __repr__(self) -> str:
        return "AesGcm(key=<hidden>)"

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes | None = None) -> bytes:
        """Return ciphertext || tag."""
        if type(iv) is not bytes or len(iv) != IV_SIZE or type(plaintext) is not bytes:
            iv, plaintext = _check_iv(iv), _require_bytes("plaintext", plaintext)
        return self._encrypt(iv, plaintext, b"" if aad is None else _require_bytes("aad", aad))

    def decrypt(self, iv: bytes, data: bytes, aad: bytes | None = None) -> bytes:
        """Return the plaintext of ciphertext || tag; raise InvalidTag on any failure."""
        if type(iv) is not bytes or len(iv) != IV_SIZE or type(data) is not bytes:
            iv, data = _check_iv(iv), _require_bytes("data", data)
        plaintext = self._decrypt(iv, data, b"" if aad is None else _require_bytes("aad", aad))
        if plaintext is None:
            raise InvalidTag("AES-GCM authentication failed")
        return plaintext


def _check_iv(iv: object) -> bytes:
    iv = _require_bytes("iv", iv)
    if len(iv) != IV_SIZE:
        raise ValueError(f"iv must be {IV_SIZE} bytes, got {len(iv)}")
    return iv
