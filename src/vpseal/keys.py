"""Parsing the API KEY: 64 hex characters that decode to the 32-byte AES-256 key."""

from __future__ import annotations

from vpseal.errors import ConfigError

_HEXDIGITS = frozenset("0123456789abcdefABCDEF")


def parse_api_key(text: str) -> bytes:
    """The API KEY's 32 bytes. Surrounding whitespace is stripped; anything else that is not
    exactly 64 hex characters raises ConfigError (which never quotes the key)."""
    if not isinstance(text, str):
        raise ConfigError(f"API KEY must be a str of 64 hex characters, not {type(text).__name__}")
    stripped = text.strip()
    if len(stripped) != 64:
        raise ConfigError(f"API KEY must be 64 hex characters, got {len(stripped)}")
    if not _HEXDIGITS.issuperset(stripped):
        raise ConfigError("API KEY must contain only hex characters 0-9 and a-f")
    return bytes.fromhex(stripped)
