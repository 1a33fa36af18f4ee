"""The cipherText wire string: base64(iv) + base64(tag) + base64(ciphertext), split by position.

Decoding is strict: exactly one encoding of each (iv, tag, ciphertext) is accepted, so that a
signature over the wire string can never be satisfied by a second spelling of the same bytes.
"""

from __future__ import annotations

import binascii

from vpseal.aead import IV_SIZE, TAG_SIZE
from vpseal.errors import WireFormatError

IV_B64 = 16
TAG_B64 = 24
_MIN_LEN = IV_B64 + TAG_B64 + 4


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def encode_wire(iv: bytes, tag: bytes, ciphertext: bytes) -> str:
    """Join the three parts; raises ValueError (a WireFormatError) on wrong part sizes."""
    if len(iv) != IV_SIZE:
        raise WireFormatError(f"iv must be {IV_SIZE} bytes, got {len(iv)}")
    if len(tag) != TAG_SIZE:
        raise WireFormatError(f"tag must be {TAG_SIZE} bytes, got {len(tag)}")
    if not ciphertext:
        raise WireFormatError("ciphertext must not be empty")
    return _b64(iv) + _b64(tag) + _b64(ciphertext)


def _strict_b64decode(part: str, what: str) -> bytes:
    try:
        raw = binascii.a2b_base64(part.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise WireFormatError(f"wire string: {what} is not valid padded base64") from None
    if _b64(raw) != part:  # non-zero trailing bits: a second spelling of the same bytes
        raise WireFormatError(f"wire string: {what} is not canonical base64") from None
    return raw


def decode_wire(text: str) -> tuple[bytes, bytes, bytes]:
    """Split and strictly decode a wire string into (iv, tag, ciphertext)."""
    if not isinstance(text, str):
        raise WireFormatError(f"wire string must be str, not {type(text).__name__}")
    if len(text) < _MIN_LEN:
        raise WireFormatError(f"wire string too short: {len(text)} characters, need {_MIN_LEN}")
    if len(text) % 4:
        raise WireFormatError("wire string length is not a multiple of 4")
    iv = _strict_b64decode(text[:IV_B64], "iv")
    tag = _strict_b64decode(text[IV_B64 : IV_B64 + TAG_B64], "tag")
    ciphertext = _strict_b64decode(text[IV_B64 + TAG_B64 :], "ciphertext")
    if len(iv) != IV_SIZE or len(tag) != TAG_SIZE:
        raise WireFormatError("wire string: iv or tag has the wrong length")
    if not ciphertext:
        raise WireFormatError("wire string: ciphertext is empty")
    return iv, tag, ciphertext
