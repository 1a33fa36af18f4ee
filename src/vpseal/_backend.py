"""The interface both engines implement, and the choice between them.

``_native`` (C over OpenSSL through cffi) and ``_fallback`` (pycryptodome + hashlib) are
interchangeable modules: the same names, the same statuses, the same bytes for the same inputs.
Everything above this module is backend-free.

Every argument here has already been validated by the public layer (key 32 bytes, IV 12 bytes,
nonce 32 hex characters, scheme one of the constants); engines still never crash on bad input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import ModuleType
from typing import Protocol, cast

SCHEME_TRANSFER = 0  # sha256(agentId + timestamp + nonce + body)
SCHEME_PIPE = 1  # sha256(agentId "|" timestamp "|" nonce "|" wireString)

# Statuses of KeyEngine.open / open_many, checked in this order.
OPEN_OK = 0
OPEN_NOT_CANONICAL = 1  # body is not exactly {"cipherText":"<chars other than quote/backslash>"}
OPEN_BAD_SIGNATURE = 2  # computed signature differs from the given one (constant-time compare)
OPEN_BAD_WIRE = 3  # the wire string is not iv(16)+tag(24)+ciphertext(>0) strict padded base64
OPEN_BAD_TAG = 4  # GCM authentication failed; no plaintext is released

BODY_PREFIX = b'{"cipherText":"'
BODY_SUFFIX = b'"}'


class KeyEngine(Protocol):
    """One AES-256 key with its per-key work done once; safe to share between threads."""

    def __init__(self, key: bytes) -> None: ...

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """ciphertext || 16-byte tag."""

    def decrypt(self, iv: bytes, data: bytes, aad: bytes) -> bytes | None:
        """Plaintext, or None when the tag does not verify (or data is shorter than a tag)."""

    def seal(
        self,
        scheme: int,
        agent_id: bytes,
        timestamp: bytes,
        nonce_hex: bytes | None,
        iv: bytes | None,
        plaintext: bytes,
    ) -> tuple[bytes, str, str]:
        """(body, nonce hex, signature hex). A None nonce or IV is drawn fresh from the CSPRNG.

        body is exactly BODY_PREFIX + wire + BODY_SUFFIX, wire = b64(iv) + b64(tag) + b64(ct).
        """

    def seal_many(
        self, scheme: int, agent_id: bytes, timestamp: bytes, plaintexts: Sequence[bytes]
    ) -> list[tuple[bytes, str, str]]:
        """seal() for each plaintext with fresh nonces and IVs, in one pass."""

    def open(
        self,
        scheme: int,
        agent_id: bytes,
        timestamp: bytes,
        nonce_hex: bytes,
        signature_hex: bytes,
        body: bytes,
    ) -> tuple[int, bytes | None]:
        """(status, plaintext if status == OPEN_OK else None). Signature hex compared
        case-insensitively; a signature that is not 64 characters is OPEN_BAD_SIGNATURE."""

    def open_many(
        self, scheme: int, items: Sequence[tuple[bytes, bytes, bytes, bytes, bytes]]
    ) -> list[tuple[int, bytes | None]]:
        """open() for each (agent_id, timestamp, nonce_hex, signature_hex, body), in one pass."""


class Engine(Protocol):
    """What a backend module exposes."""

    NAME: str
    KeyEngine: type[KeyEngine]

    def openssl_version(self) -> str | None: ...

    def random_bytes(self, n: int) -> bytes: ...

    def sha256_hex(self, data: bytes) -> str: ...


def _load() -> Engine:
    wanted = os.environ.get("VPSEAL_BACKEND", "").strip().lower()
    if wanted not in ("", "native", "fallback"):
        raise ImportError(f"VPSEAL_BACKEND must be 'native' or 'fallback', not {wanted!r}")
    module: ModuleType
    if wanted == "fallback":
        from vpseal import _fallback as module
    elif wanted == "native":
        from vpseal import _native as module  # raises ImportError saying why
    else:
        try:
            from vpseal import _native as module
        except ImportError:
            from vpseal import _fallback as module
    return cast(Engine, module)


engine: Engine = _load()
