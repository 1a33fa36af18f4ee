"""The interface both engines implement, and the choice between them.

``_native`` (C over OpenSSL through cffi) and ``_fallback`` (pycryptodome + hashlib) are
interchangeable modules: the same names, the same statuses, the same bytes for the same inputs.
Everything above this module is backend-free.

The public layer validates what it can (key 32 bytes, scheme one of the constants, payload
JSON); engines check the rest themselves (IV and header formats, every length) and never crash
on bad input. Both engines raise the same exception types for the same bad input (the shared
checks are in _args; tests/test_engine_errors.py holds them to it):

- TypeError: an argument of the wrong type. Every buffer may be bytes or any bytes-like
  (bytearray, memoryview, a bytes subclass); each is copied once into an exact bytes object,
  so nothing an object says about its own length is trusted;
- ValueError: a wrong value or length (a key not 32 bytes, an IV not 12, an unknown scheme, an
  empty plaintext, a fixed timestamp/nonce/IV of the wrong form, data longer than AES-GCM
  allows, a negative count). Never OverflowError, however large an int;
- InvalidTag: decrypt's authentication failure;
- RuntimeError: OpenSSL itself failed (native only: allocation, provider).

open and open_batch answer for the request instead of raising: a status, including for header
lengths that do not fit the header bytes (OPEN_BAD_TIMESTAMP, then OPEN_BAD_NONCE), so that in
a batch every request gets its own verdict. Only arguments that no request could have (a wrong
type, an unknown scheme, an engine of the other class) raise, for the whole batch.

If the native engine cannot be used, importing it raises ImportError saying why: not built,
not CPython, or its known-answer self-test failed (see _native). With VPSEAL_BACKEND unset the
fallback is used instead, the reason is kept in ``native_error``, and a
``vpseal.NativeEngineUnavailable`` warning (a RuntimeWarning) says why and how to fix it, once
per process: a gateway should not run 2-3x slower without knowing. VPSEAL_BACKEND=fallback
chooses the fallback explicitly, without a warning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Protocol, cast

from vpseal.errors import NativeEngineUnavailable


class KeyEngine(Protocol):
    """One AES-256 key with its per-key work done once; safe to share between threads."""

    def __init__(self, key: bytes) -> None: ...

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes | None = None) -> bytes:
        """ciphertext || 16-byte tag; checks and errors exactly as AesGcm documents."""

    def decrypt(self, iv: bytes, data: bytes, aad: bytes | None = None) -> bytes:
        """Plaintext; raises InvalidTag on any authentication failure."""

    def seal(
        self,
        scheme: int,
        agent_id: bytes,
        plaintext: bytes,
        timestamp: bytes | None = None,
        nonce_hex: bytes | None = None,
        iv: bytes | None = None,
    ) -> tuple[bytes, str, str, str]:
        """(body, timestamp, nonce hex, signature hex). timestamp defaults to the clock (Unix
        ms), nonce and IV to fresh CSPRNG bytes; giving them is for known-answer tests.

        body is exactly BODY_PREFIX + wire + BODY_SUFFIX, wire = b64(iv) + b64(tag) + b64(ct).
        """

    def seal_many(
        self, scheme: int, agent_id: bytes, plaintexts: Sequence[bytes]
    ) -> list[tuple[bytes, str, str, str]]:
        """seal() for each plaintext with one clock reading and fresh nonces and IVs."""

    def open(
        self,
        scheme: int,
        agent_id: bytes,
        headers: bytes,
        ts_len: int,
        nonce_len: int,
        body: bytes,
    ) -> tuple[int, bytes | None]:
        """(status, plaintext if status == OPEN_OK else None). headers is the x-timestamp,
        x-nonce and x-signature values back to back (ASCII); ts_len and nonce_len split it.
        Signature hex is compared case-insensitively; one not 64 long is OPEN_BAD_SIGNATURE."""

    @staticmethod
    def open_batch(
        items: Sequence[tuple[KeyEngine, int, bytes, bytes, int, int, bytes]],
    ) -> list[tuple[int, bytes | None]]:
        """open() for each (engine, scheme, agent_id, headers, ts_len, nonce_len, body), all
        engines of this class, in one pass (one crossing into C for the native engine)."""


class Engine(Protocol):
    """What a backend module exposes."""

    NAME: str
    KeyEngine: type[KeyEngine]

    def openssl_version(self) -> str | None: ...

    def random_bytes(self, n: int) -> bytes: ...

    def sha256_hex(self, data: bytes) -> str: ...


def load(name: str) -> Engine:
    """The engine module called name ("native" or "fallback"); ImportError saying why not."""
    module: ModuleType
    if name == "native":
        from vpseal import _native as module
    elif name == "fallback":
        from vpseal import _fallback as module
    else:
        raise ValueError(f"backend must be 'native' or 'fallback', not {name!r}")
    return cast(Engine, module)


# Why the native engine is not the process-wide one, when it was wanted but could not load.
native_error: str | None = None


def _load() -> Engine:
    global native_error
    wanted = os.environ.get("VPSEAL_BACKEND", "").strip().lower()
    if wanted not in ("", "native", "fallback"):
        raise ImportError(f"VPSEAL_BACKEND must be 'native' or 'fallback', not {wanted!r}")
    if wanted:
        return load(wanted)
    try:
        return load("native")
    except ImportError as exc:
        native_error = str(exc)
        fallback = load("fallback")
        warnings.warn(NativeEngineUnavailable(_unavailable_message(native_error)), stacklevel=3)
        return fallback


def _unavailable_message(reason: str) -> str:
    return (
        f"{reason}. vpseal is using its pure-Python fallback engine (pycryptodome), 2-3x"
        " slower. To fix: a vpseal wheel needs the system's OpenSSL 3 (libcrypto.so.3);"
        " building from source needs a C compiler and the OpenSSL 3 headers (Debian/Ubuntu:"
        " build-essential libssl-dev; Fedora: gcc openssl-devel). Then reinstall with"
        " pip install --force-reinstall --no-cache-dir vpseal (see docs/openssl.md)."
        " VPSEAL_BACKEND=fallback chooses the fallback and silences this warning."
    )


def select(name: str | None) -> Engine:
    """The process-wide engine for None, else the named one (per-object choice)."""
    return engine if name is None else load(name)


engine: Engine = _load()
