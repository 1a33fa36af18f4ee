"""Argument checks of the engines, shared by both so that their errors agree.

Engines test the common case inline (``type(x) is bytes``, the IV length) and call these only
when that fails, or after C refused an argument, to convert bytes-likes or raise naming the
culprit. The rules, the same for both engines:

- every buffer becomes an exact ``bytes`` object: ``bytes`` itself, or one copy of any other
  bytes-like (``bytearray``, ``memoryview``, a ``bytes`` subclass). A subclass is copied even
  though it is a ``bytes``: its ``__len__`` (or anything else it overrides) is never trusted,
  and lengths are only ever taken of the exact copy. Anything else is a TypeError;
- a wrong value or length is a ValueError; never OverflowError, whatever the size of an int;
- the header lengths of an open that do not fit the header bytes are not an exception but the
  status of the header they leave malformed (OPEN_BAD_TIMESTAMP, then OPEN_BAD_NONCE), so
  that one such request in a batch is that request's own verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

from vpseal._protocol import OPEN_BAD_NONCE, OPEN_BAD_TIMESTAMP, OPEN_OK

IV_SIZE = 12
KEY_SIZE = 32
# NIST SP 800-38D: a GCM plaintext is at most 2^39 - 256 bits (2^32 - 2 counter blocks).
GCM_MAX_BYTES = (1 << 36) - 32
# The most random bytes one call may ask for (RAND_bytes takes an int).
RANDOM_MAX = (1 << 31) - 1
_LOWER_HEX = b"0123456789abcdef"
_BYTES_LIKE = (bytes, bytearray, memoryview)


def as_bytes(name: str, value: object) -> bytes:
    """value as an exact bytes object (see the module docstring), or TypeError naming it."""
    if type(value) is bytes:
        return value
    if isinstance(value, _BYTES_LIKE):
        return memoryview(value).tobytes()  # the real buffer, whatever __len__/__bytes__ say
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def aead_args(iv: object, data: object, aad: object, data_name: str) -> tuple[bytes, bytes, bytes]:
    """(iv, data, aad) as exact bytes, aad b"" when None; TypeError/ValueError naming the
    culprit. (The engines check GCM's length limit themselves: see too_long.)"""
    iv = as_bytes("iv", iv)
    if len(iv) != IV_SIZE:
        raise ValueError(f"iv must be {IV_SIZE} bytes, got {len(iv)}")
    return iv, as_bytes(data_name, data), b"" if aad is None else as_bytes("aad", aad)


def too_long(what: str) -> ValueError:
    return ValueError(f"{what} longer than AES-GCM allows (2^36 - 32 bytes)")


def key_bytes(key: object) -> bytes:
    key = as_bytes("key", key)
    if len(key) != KEY_SIZE:
        raise ValueError(f"AES-256 key must be {KEY_SIZE} bytes, got {len(key)}")
    return key


def scheme_code(scheme: object) -> int:
    """scheme as SCHEME_TRANSFER (0) or SCHEME_PIPE (1): TypeError for a non-int, ValueError
    for any other int."""
    if not isinstance(scheme, int):
        raise TypeError(f"scheme must be an int (0 or 1), not {type(scheme).__name__}")
    if scheme != 0 and scheme != 1:
        raise ValueError("unknown signature scheme")
    return int(scheme)


def random_count(n: object) -> int:
    if not isinstance(n, int):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    if not 0 <= n <= RANDOM_MAX:
        raise ValueError(f"n must be between 0 and {RANDOM_MAX}")
    return int(n)


def _plaintext(value: object) -> bytes:
    plaintext = as_bytes("plaintext", value)
    if not plaintext:
        raise ValueError("plaintext must not be empty (an empty ciphertext never opens)")
    if len(plaintext) > GCM_MAX_BYTES:
        raise too_long("plaintext")
    return plaintext


def seal_args(
    scheme: object,
    agent_id: object,
    plaintext: object,
    timestamp: object = None,
    nonce_hex: object = None,
    iv: object = None,
) -> tuple[int, bytes, bytes, bytes | None, bytes | None, bytes | None]:
    """KeyEngine.seal's arguments checked and converted, or TypeError/ValueError."""
    code = scheme_code(scheme)
    agent = as_bytes("agent_id", agent_id)
    data = _plaintext(plaintext)
    ts = nonce = fixed_iv = None
    if timestamp is not None:
        ts = as_bytes("timestamp", timestamp)
        if not (0 < len(ts) <= 16 and ts.isdigit()):  # bytes.isdigit is ASCII-only
            raise ValueError("timestamp must be 1-16 decimal digits")
    if nonce_hex is not None:
        nonce = as_bytes("nonce_hex", nonce_hex)
        if len(nonce) != 32 or nonce.strip(_LOWER_HEX):
            raise ValueError("nonce must be 32 lowercase hex characters")
    if iv is not None:
        fixed_iv = as_bytes("iv", iv)
        if len(fixed_iv) != IV_SIZE:
            raise ValueError(f"iv must be {IV_SIZE} bytes")
    return code, agent, data, ts, nonce, fixed_iv


def seal_many_args(
    scheme: object, agent_id: object, plaintexts: object
) -> tuple[int, bytes, list[bytes]]:
    """KeyEngine.seal_many's arguments checked and converted, or TypeError/ValueError."""
    code = scheme_code(scheme)
    agent = as_bytes("agent_id", agent_id)
    if not isinstance(plaintexts, Sequence) or isinstance(plaintexts, (*_BYTES_LIKE, str)):
        what = type(plaintexts).__name__
        raise TypeError(f"plaintexts must be a sequence of bytes, not {what}")
    return code, agent, [_plaintext(p) for p in plaintexts]


def header_split(headers: bytes, ts_len: object, nonce_len: object) -> int:
    """OPEN_OK when ts_len and nonce_len split headers, else the status of the header they
    leave malformed; TypeError when they are not ints."""
    if not isinstance(ts_len, int) or not isinstance(nonce_len, int):
        raise TypeError("ts_len and nonce_len must be ints")
    if not 0 <= ts_len <= len(headers):
        return OPEN_BAD_TIMESTAMP
    if not 0 <= nonce_len <= len(headers) - ts_len:
        return OPEN_BAD_NONCE
    return OPEN_OK


def open_args(
    scheme: object,
    agent_id: object,
    headers: object,
    ts_len: object,
    nonce_len: object,
    body: object,
) -> tuple[int, bytes, bytes, int, int, bytes, int]:
    """KeyEngine.open's arguments checked and converted, plus the header_split status;
    TypeError/ValueError for arguments no request could have."""
    code = scheme_code(scheme)
    agent = as_bytes("agent_id", agent_id)
    joined = as_bytes("headers", headers)
    data = as_bytes("body", body)
    if not isinstance(ts_len, int) or not isinstance(nonce_len, int):
        raise TypeError("ts_len and nonce_len must be ints")
    status = header_split(joined, ts_len, nonce_len)
    return code, agent, joined, int(ts_len), int(nonce_len), data, status
