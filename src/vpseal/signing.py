"""The two request-signature schemes of SPEC.md section 4 (plain SHA-256, lowercase hex).

"transfer": sha256(agentId + timestamp + nonce + body), body being the exact HTTP body bytes.
"pipe":     sha256(agentId "|" timestamp "|" nonce "|" wireString).
No secret enters the hash: the signature guards integrity, the GCM key guards authenticity.
"""

from __future__ import annotations

import hmac
from typing import Literal

from vpseal._backend import engine
from vpseal._protocol import SCHEME_PIPE, SCHEME_TRANSFER

Scheme = Literal["transfer", "pipe"]
SCHEMES: dict[str, int] = {"transfer": SCHEME_TRANSFER, "pipe": SCHEME_PIPE}


def scheme_code(scheme: str) -> int:
    """The backend constant for a scheme name; ValueError for anything else."""
    try:
        return SCHEMES[scheme]
    except (KeyError, TypeError):
        raise ValueError(f"scheme must be 'transfer' or 'pipe', not {scheme!r}") from None


def timestamp_text(timestamp: str | int) -> str:
    """The x-timestamp header value: an int of milliseconds or its decimal string (ASCII
    digits only; ValueError otherwise)."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, str)):
        raise TypeError(f"timestamp must be str or int, not {type(timestamp).__name__}")
    text = str(timestamp)
    if not (text.isascii() and text.isdigit()):
        raise ValueError("timestamp must be a non-negative number of milliseconds in digits")
    return text


def _utf8(name: str, value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be str or bytes, not {type(value).__name__}")


def signature_string(
    agent_id: str, timestamp: str | int, nonce: str, data: bytes | str, scheme: Scheme = "transfer"
) -> bytes:
    """The exact bytes that are hashed, for logging-free debugging and for tests."""
    code = scheme_code(scheme)
    parts = (
        _utf8("agent_id", agent_id),
        timestamp_text(timestamp).encode("ascii"),
        _utf8("nonce", nonce),
        _utf8("data", data),
    )
    return (b"|" if code == SCHEME_PIPE else b"").join(parts)


def sign(
    agent_id: str, timestamp: str | int, nonce: str, data: bytes | str, scheme: Scheme = "transfer"
) -> str:
    """64 lowercase hex characters. data: the body bytes ("transfer") or wire string ("pipe")."""
    return engine.sha256_hex(signature_string(agent_id, timestamp, nonce, data, scheme))


def verify_signature(
    agent_id: str,
    timestamp: str | int,
    nonce: str,
    data: bytes | str,
    signature: str,
    scheme: Scheme = "transfer",
) -> bool:
    """True when signature matches; compared in constant time (hex case ignored)."""
    scheme_code(scheme)  # an unknown scheme is the caller's error, not a mismatch
    try:
        expected = sign(agent_id, timestamp, nonce, data, scheme)
    except (ValueError, UnicodeEncodeError):  # a malformed timestamp never verifies
        return False
    if not isinstance(signature, str) or not signature.isascii():
        return False
    return hmac.compare_digest(expected, signature.lower())
