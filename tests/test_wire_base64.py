"""Strict base64 in the wire string behaves the same on every Python vpseal supports.

binascii.a2b_base64(..., strict_mode=True) only exists from 3.11 and its rules changed in 3.13
(3.11 and 3.12 accept excess '=' after a whole quad), so vpseal.wire does not use it: a part is
accepted iff it is the canonical encoding of some bytes. The table below pins the answers for
every version; on 3.11+ the interpreter's own strict_mode is the reference for what is accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import string
import sys
from collections.abc import Callable

import pytest
from _envelope_helpers import SCHEMES, WINDOW_ONLY, creds, resign
from hypothesis import example, given
from hypothesis import strategies as st

import vpseal
from vpseal import WireFormatError
from vpseal.wire import _PADDED_B64, _strict_b64decode

B64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
HAS_STRICT_MODE = sys.version_info >= (3, 11)
STRICT_MODE_CURRENT = sys.version_info >= (3, 13)  # no excess '=' after a whole quad

OK, INVALID, NOT_CANONICAL = "ok", "not valid padded base64", "not canonical base64"

CASES = {
    # canonical
    "": OK,
    "QQ==": OK,
    "QUI=": OK,
    "QUJD": OK,
    "QUJDRA==": OK,
    "+/+/": OK,
    # non-zero trailing bits: a second spelling of the same bytes
    "QR==": NOT_CANONICAL,
    "QUJ=": NOT_CANONICAL,
    "QUJDRB==": NOT_CANONICAL,
    "//8=": OK,
    "//9=": NOT_CANONICAL,
    # incomplete quads
    "Q": INVALID,
    "QQ": INVALID,
    "QUJ": INVALID,
    "QQ=": INVALID,
    "Q===": INVALID,
    # '=' elsewhere than the end of the last quad
    "=": INVALID,
    "====": INVALID,
    "=QUJ": INVALID,
    "QU=I": INVALID,
    "QQ==QUJD": INVALID,
    "QQ===": INVALID,
    "QUI==": INVALID,
    "QUJD=QUJD": INVALID,
    # excess '=' after a whole quad: 3.11/3.12 strict_mode decode these, 3.13 rejects them
    "QUJD=": INVALID,
    "QUJD==": INVALID,
    "QUJD====": INVALID,
    # foreign characters, which the lenient decoder would skip
    "QUJD\n": INVALID,
    "\nQUJD": INVALID,
    "QU JD": INVALID,
    "QQ==\n": INVALID,
    "QQ=\n=": INVALID,
    "QUJ-": INVALID,
    "QUJ_": INVALID,
    "QUJ.": INVALID,
    "QUJ\x00": INVALID,
    "QUJé": INVALID,
    "QUJ\uff21": INVALID,
}

# Characters that exercise every branch: the alphabet's edges, '=', whitespace, the urlsafe
# alphabet, other ASCII, and non-ASCII.
CHARS = "AQgwz09+/=" + " \n\t-_.*\x00é\uff21"
parts = st.text(alphabet=CHARS, max_size=14) | st.text(alphabet="AQw+/=", max_size=10)


def _outcome(part: str) -> str:
    try:
        _strict_b64decode(part, "x")
    except WireFormatError as exc:
        message = str(exc)
        assert message.startswith("wire string: x is ")
        return message.removeprefix("wire string: x is ")
    return OK


@pytest.mark.parametrize(("part", "expected"), CASES.items(), ids=[repr(k) for k in CASES])
def test_table(part: str, expected: str) -> None:
    assert _outcome(part) == expected
    if expected == OK:
        assert _strict_b64decode(part, "x") == base64.b64decode(part, validate=True)


@pytest.mark.skipif(not HAS_STRICT_MODE, reason="binascii strict_mode is 3.11+")
def test_table_agrees_with_strict_mode() -> None:
    """The table is what the interpreter's strict_mode says, plus the round trip."""
    for part, expected in CASES.items():
        assert _reference(part) == (expected == OK), part
        if STRICT_MODE_CURRENT:
            assert _strict_mode_accepts(part) == (expected != INVALID), part


def _strict_mode_accepts(part: str) -> bool:
    try:
        binascii.a2b_base64(part.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        return False
    return True


def _reference(part: str) -> bool:
    """What vpseal accepted on 3.11+ before it stopped using strict_mode."""
    try:
        raw = binascii.a2b_base64(part.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        return False
    return base64.b64encode(raw).decode("ascii") == part


@given(part=parts)
@example(part="QUJD=")
def test_accepted_iff_canonical(part: str) -> None:
    """Any version: accepted exactly when re-encoding gives the same characters."""
    try:
        raw = _strict_b64decode(part, "x")
    except WireFormatError:
        try:
            canonical = base64.b64encode(base64.b64decode(part, validate=True)).decode() == part
        except (binascii.Error, ValueError):
            canonical = False
        assert not canonical
    else:
        assert base64.b64encode(raw).decode("ascii") == part


@given(data=st.binary(max_size=40))
def test_every_encoding_is_accepted(data: bytes) -> None:
    assert _strict_b64decode(base64.b64encode(data).decode("ascii"), "x") == data


@pytest.mark.skipif(not HAS_STRICT_MODE, reason="binascii strict_mode is 3.11+")
@given(part=parts)
@example(part="QUJD=")
@example(part="QUJD====")
def test_same_accept_set_as_strict_mode(part: str) -> None:
    assert (_outcome(part) == OK) == _reference(part)


@pytest.mark.skipif(not STRICT_MODE_CURRENT, reason="strict_mode's current rules are 3.13+")
@given(part=parts)
@example(part="QUJD=")
def test_error_wording_follows_strict_mode(part: str) -> None:
    """'not valid padded base64' exactly where 3.13's strict_mode refuses the string."""
    assert (_PADDED_B64.fullmatch(part) is not None) == _strict_mode_accepts(part)
    assert (_outcome(part) == INVALID) == (not _strict_mode_accepts(part))


# -- through open_request: a re-spelled body takes the path that decodes the wire in Python ----


def _trailing_bits(wire: str) -> str:
    """The tag's last data character with non-zero trailing bits: same bytes, second spelling."""
    index = B64_ALPHABET.index(wire[37])
    return wire[:37] + B64_ALPHABET[index | 1] + wire[38:]


RESPELLINGS = {
    "tag-trailing-bits": _trailing_bits,
    "newline-in-ct": lambda wire: wire[:41] + "\n" + wire[42:],
    "ct-excess-padding": lambda wire: wire + "====",
    "urlsafe-ct": lambda wire: wire[:40] + wire[40:].replace("+", "-").replace("/", "_"),
}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("respell", RESPELLINGS.values(), ids=RESPELLINGS.keys())
def test_open_request_refuses_a_respelled_wire(
    backend: str, scheme: str, respell: Callable[[str], str]
) -> None:
    """A JSON re-spelling of the body, signed over its own bytes (transfer) or over the changed
    wire string (pipe), is refused with the documented error on every Python: never a plain
    TypeError from binascii (3.10 has no strict_mode)."""
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, {"username": "player001"})
    wire = json.loads(sealed.body)["cipherText"]
    bad = respell(wire)
    if bad == wire:  # no '+' or '/' in the ciphertext to swap for the urlsafe alphabet
        bad = wire[:40] + "-" + wire[41:]
    body = json.dumps({"cipherText": bad}).encode()  # ": " keeps it off the byte-exact path
    headers = resign(sealed.headers, body, scheme)
    with pytest.raises(vpseal.DecryptionError, match="not a valid wire string"):
        vpseal.open_request(c, headers, body, guard=WINDOW_ONLY)
    # the same re-spelling around the genuine wire opens
    body = json.dumps({"cipherText": wire}).encode()
    headers = resign(sealed.headers, body, scheme)
    opened = vpseal.open_request(c, headers, body, guard=WINDOW_ONLY)
    assert opened.payload == {"username": "player001"}
