"""The cipherText wire string: base64(iv) + base64(tag) + base64(ciphertext), split by position.

Decoding is strict: exactly one encoding of each (iv, tag, ciphertext) is accepted, so that a
signature over the wire string can never be satisfied by a second spelling of the same bytes.
"""

from __future__ import annotations

import binascii
import re

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


# Well-formed padded base64: only the standard alphabet, whole quads, '=' only as the padding
# of the last quad ("xx==" or "xxx="). This is the set binascii.a2b_base64(..., strict_mode=True)
# accepts on 3.13 (3.11 and 3.12 also let excess '=' follow a whole quad; 3.10 has no
# strict_mode). It only words the error: the round trip below decides what is accepted.
_PADDED_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _strict_b64decode(part: str, what: str) -> bytes:
    """Decode one part, accepting exactly the canonical encoding of some bytes.

    A string is accepted iff re-encoding the decoded bytes gives back the same characters: that
    rules out foreign characters (which the lenient decoder skips), misplaced or missing '=',
    and non-zero trailing bits. The same code runs on every Python version.
    """
    raw: bytes | None
    try:
        raw = binascii.a2b_base64(part.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        raw = None
    if raw is not None and _b64(raw) == part:
        return raw
    if _PADDED_B64.fullmatch(part) is None:
        raise WireFormatError(f"wire string: {what} is not valid padded base64")
    # well-formed, but with non-zero trailing bits: a second spelling of the same bytes
    raise WireFormatError(f"wire string: {what} is not canonical base64")


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
