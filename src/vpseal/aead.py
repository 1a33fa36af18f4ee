"""AES-256-GCM with a key object that does its per-key work once (the AESGCM shape)."""

from __future__ import annotations

from typing import Protocol, TypeAlias, cast

from vpseal._args import IV_SIZE, as_bytes
from vpseal._backend import select

KEY_SIZE = 32
TAG_SIZE = 16

BytesLike: TypeAlias = bytes | bytearray | memoryview
"""What every buffer argument accepts (each is copied once into an exact bytes object)."""

__all__ = ["IV_SIZE", "KEY_SIZE", "TAG_SIZE", "AesGcm", "BytesLike"]


class _Encrypt(Protocol):
    def __call__(
        self, iv: BytesLike, plaintext: BytesLike, aad: BytesLike | None = None
    ) -> bytes:
        """ciphertext || 16-byte tag."""
        ...


class _Decrypt(Protocol):
    def __call__(self, iv: BytesLike, data: BytesLike, aad: BytesLike | None = None) -> bytes:
        """The plaintext of ciphertext || tag; vpseal.InvalidTag on any authentication
        failure."""
        ...


class AesGcm:
    """AES-256-GCM: 32-byte key, 12-byte IV, 16-byte tag appended to the ciphertext.

    ``encrypt(iv, plaintext, aad=None) -> bytes`` returns ciphertext || tag.
    ``decrypt(iv, data, aad=None) -> bytes`` returns the plaintext of ciphertext || tag and
    raises vpseal.InvalidTag on any authentication failure.
    Wrong types raise TypeError and wrong lengths ValueError, naming the parameter;
    bytearray and memoryview are accepted wherever bytes are.

    One object may be used from several threads at once. The caller owns IV uniqueness here;
    the whole-request API (seal_request) draws IVs itself.

    Key usage limit: with random 96-bit IVs, encrypt at most 2^32 (about 4.3 billion) messages
    under one key (NIST SP 800-38D, section 8.3): beyond that the chance that two IVs collide,
    which would expose the XOR of two plaintexts and let an attacker forge tags, exceeds the
    2^-32 the standard allows. Rotate the key well before then. (Counter IVs that never repeat
    have no such bound, but must then be managed across processes and restarts.) A single
    message is at most 2^36 - 32 bytes; longer data is a ValueError.
    """

    # encrypt/decrypt are the engine's own bound methods: one Python frame per call.
    __slots__ = ("_engine", "decrypt", "encrypt")
    # Typed as the signatures above (mypy checks callers); the engines' own methods are bound
    # in __init__.
    encrypt: _Encrypt
    decrypt: _Decrypt

    def __init__(self, key: BytesLike, *, backend: str | None = None) -> None:
        """backend: None for the process-wide engine (vpseal.backend()), or "native" /
        "fallback" for this object alone (cross-checks, benchmarks)."""
        key = as_bytes("key", key)
        if len(key) != KEY_SIZE:
            raise ValueError(f"key must be {KEY_SIZE} bytes, got {len(key)}")
        self._engine = select(backend).KeyEngine(key)
        self.encrypt = cast(_Encrypt, self._engine.encrypt)
        self.decrypt = cast(_Decrypt, self._engine.decrypt)

    def __repr__(self) -> str:
        return "AesGcm(key=<hidden>)"
