"""The cipherText wire string: base64(iv) (16) + base64(tag) (24) + base64(ciphertext).

Decoding is strict: one spelling per (iv, tag, ciphertext), anything else is WireFormatError.
"""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vpseal
from vpseal import WireFormatError, decode_wire, encode_wire

ivs = st.binary(min_size=12, max_size=12)
tags = st.binary(min_size=16, max_size=16)
ciphertexts = st.binary(min_size=1, max_size=2000)

B64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"

# The docs' example (SPEC.md section 2): IV part, tag part, and the ends of the ciphertext part.
DOC_IV = "G0ZMDELeJwx+7JcI"
DOC_TAG = "fIFOLJjkSzANPu6krGM2uw=="
DOC_CT_HEAD, DOC_CT_TAIL = "bDUB6MvL", "HjdFzQ=="
CT = "QUJD"  # b"ABC"
GOOD = DOC_IV + DOC_TAG + CT


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_good_example_decodes() -> None:
    """The base string the malformed table mutates is itself accepted."""
    assert decode_wire(GOOD) == (
        base64.b64decode(DOC_IV),
        base64.b64decode(DOC_TAG),
        b"ABC",
    )


# -- round trip ------------------------------------------------------------------------------


@given(iv=ivs, tag=tags, ct=ciphertexts)
def test_round_trip(iv: bytes, tag: bytes, ct: bytes) -> None:
    text = encode_wire(iv, tag, ct)
    assert type(text) is str
    assert text == _b64(iv) + _b64(tag) + _b64(ct)
    assert len(text) == 16 + 24 + 4 * -(-len(ct) // 3)
    assert "=" not in text[:16]
    assert text[16:40].endswith("==") and "=" not in text[16:38]
    assert decode_wire(text) == (iv, tag, ct)


def test_doc_example_structure() -> None:
    """A 100-byte ciphertext laid out like the docs' example: IV 16 chars, tag 24 ending '=='."""
    ct = base64.b64decode(DOC_CT_HEAD) + bytes(range(90)) + base64.b64decode(DOC_CT_TAIL)
    assert len(ct) == 100
    text = DOC_IV + DOC_TAG + _b64(ct)
    assert text.startswith("G0ZMDELeJwx+7JcIfIFOLJjkSzANPu6krGM2uw==bDUB6MvL")
    assert text.endswith("HjdFzQ==")
    assert len(text) == 16 + 24 + 136

    iv, tag, decoded = decode_wire(text)
    assert len(iv) == 12 and len(tag) == 16 and decoded == ct
    assert iv == base64.b64decode(DOC_IV)
    assert tag.hex() == "7c814e2c98e44b300d3eeea4ac6336bb"
    assert encode_wire(iv, tag, decoded) == text
    # split by position, not at '=': the tag's padding sits in the middle of the string
    assert text.index("==") == 38


@given(iv=ivs, tag=tags, ct=st.binary(min_size=1, max_size=60), data=st.data())
def test_one_character_change_is_rejected_or_canonical(
    iv: bytes, tag: bytes, ct: bytes, data: st.DataObject
) -> None:
    """Strictness: whatever decode_wire accepts re-encodes to exactly the same string, so no
    second spelling of the same bytes exists."""
    text = encode_wire(iv, tag, ct)
    pos = data.draw(st.integers(0, len(text) - 1), label="pos")
    char = data.draw(st.sampled_from(B64_ALPHABET + "=-_* \n\x00é"), label="char")
    mutated = text[:pos] + char + text[pos + 1 :]
    try:
        decoded = decode_wire(mutated)
    except WireFormatError:
        return
    assert encode_wire(*decoded) == mutated


# -- malformed strings ---------------------------------------------------------------------------


def _at(text: str, pos: int, char: str) -> str:
    return text[:pos] + char + text[pos + 1 :]


MALFORMED = {
    # length
    "empty": "",
    "too-short-iv-only": DOC_IV,
    "too-short-43": GOOD[:43],
    "too-short-no-ciphertext": DOC_IV + DOC_TAG,
    "length-not-multiple-of-4-45": GOOD + "Q",
    "length-not-multiple-of-4-46": GOOD + "QQ",
    "length-not-multiple-of-4-47": GOOD + "QUJ",
    # alphabet
    "dash-in-ct": _at(GOOD, 41, "-"),
    "underscore-in-ct": _at(GOOD, 41, "_"),
    "star-in-ct": _at(GOOD, 41, "*"),
    "space-in-ct": _at(GOOD, 41, " "),
    "newline-in-ct": _at(GOOD, 41, "\n"),
    "trailing-newline": GOOD[:-1] + "\n",
    "leading-space": " " + GOOD[1:],
    "nul-in-ct": _at(GOOD, 41, "\x00"),
    "non-ascii-in-ct": _at(GOOD, 41, "é"),
    "fullwidth-in-ct": _at(GOOD, 41, "\uff21"),
    "dash-in-iv": _at(GOOD, 3, "-"),
    "underscore-in-tag": _at(GOOD, 20, "_"),
    "non-ascii-in-iv": _at(GOOD, 0, "ß"),
    "non-ascii-in-tag": _at(GOOD, 17, "\u00e9"),
    "urlsafe-alphabet": (DOC_IV + DOC_TAG).replace("+", "-") + CT,
    # padding
    "eq-inside-iv": _at(GOOD, 4, "="),
    "eq-padded-iv": "G0ZMDELeJwx+7J==" + DOC_TAG + CT,
    "iv-all-padding-end": "AAAAAAAAAAAAAA==" + DOC_TAG + CT,
    "tag-without-padding": DOC_IV + DOC_TAG[:-2] + "AA" + CT,
    "tag-one-eq": DOC_IV + "AAAAAAAAAAAAAAAAAAAAAAA=" + CT,
    "tag-eq-inside": DOC_IV + _at(DOC_TAG, 5, "=") + CT,
    "tag-triple-eq": DOC_IV + DOC_TAG[:-3] + "===" + CT,
    "ct-eq-in-middle": DOC_IV + DOC_TAG + "QQ==QUJD",
    "ct-eq-at-start": DOC_IV + DOC_TAG + "=QUJ",
    "ct-triple-eq": DOC_IV + DOC_TAG + "QUJDQ===",
    "ct-all-padding": DOC_IV + DOC_TAG + "====",
    "ct-one-char-then-eq": DOC_IV + DOC_TAG + "Q===",
    # non-canonical trailing bits (a second spelling of the same bytes)
    "ct-trailing-bits-1-byte": DOC_IV + DOC_TAG + "QR==",
    "ct-trailing-bits-2-bytes": DOC_IV + DOC_TAG + "QUJ=",
    "tag-trailing-bits": DOC_IV + DOC_TAG[:-3] + "x==" + CT,
    # wrong part sizes
    "iv-16-bytes": _b64(bytes(16)) + DOC_TAG + CT,
    "iv-11-bytes": "A" * 15 + "=" + DOC_TAG + CT,
    "tag-17-bytes": DOC_IV + _b64(bytes(17)) + CT,
    "tag-18-bytes": DOC_IV + _b64(bytes(18)) + CT,
    "tag-at-end": DOC_IV + CT + DOC_TAG,
    "parts-swapped": DOC_TAG + DOC_IV + CT,
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_rejected(text: str) -> None:
    with pytest.raises(WireFormatError):
        decode_wire(text)


@pytest.mark.parametrize(
    "value",
    [GOOD.encode("ascii"), bytearray(GOOD.encode("ascii")), None, 12345, ["x"] * 44],
    ids=["bytes", "bytearray", "None", "int", "list"],
)
def test_non_str_rejected(value: object) -> None:
    with pytest.raises(WireFormatError):
        decode_wire(value)  # type: ignore[arg-type]


# -- encode_wire arguments ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 8, 11, 13, 16])
def test_encode_wrong_iv_length(size: int) -> None:
    with pytest.raises(WireFormatError, match="iv"):
        encode_wire(bytes(size), bytes(16), b"x")


@pytest.mark.parametrize("size", [0, 12, 15, 17, 32])
def test_encode_wrong_tag_length(size: int) -> None:
    with pytest.raises(WireFormatError, match="tag"):
        encode_wire(bytes(12), bytes(size), b"x")


def test_encode_empty_ciphertext() -> None:
    with pytest.raises(WireFormatError, match="ciphertext"):
        encode_wire(bytes(12), bytes(16), b"")


# -- the error type ------------------------------------------------------------------------------


def test_wire_format_error_hierarchy() -> None:
    assert issubclass(WireFormatError, vpseal.VPSealError)
    assert issubclass(WireFormatError, ValueError)  # documented: "raises ValueError"
    assert WireFormatError.api_code == 84
    with pytest.raises(vpseal.VPSealError):
        decode_wire("")
