"""vpseal._json.text: the one writer of JSON text for the sandbox's answers and the CLI."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from vpseal._json import dumps, text


def test_decimals_are_written_in_plain_notation_exactly() -> None:
    doc = {"amount": Decimal("2.323582E+3"), "tiny": Decimal("1E-6"), "n": [Decimal("1E+2"), 3]}
    assert text(doc) == '{"amount":2323.582,"tiny":0.000001,"n":[100,3]}'
    assert json.loads(text(doc), parse_float=Decimal) == {
        "amount": Decimal("2323.582"), "tiny": Decimal("0.000001"), "n": [100, 3],
    }  # fmt: skip


def test_payload_bytes_keep_the_decimal_as_given() -> None:
    """dumps (what is sealed) is unchanged: a Decimal is written as str() writes it."""
    assert dumps({"a": Decimal("1E+2")}) == b'{"a":1E+2}'


def test_non_ascii_kept_and_bad_values_refused() -> None:
    written = text({"name": "José", "ok": True, "none": None})
    assert written == '{"name":"José","ok":true,"none":null}'
    for bad in (Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValueError):
            text({"amount": bad})
    with pytest.raises(TypeError):
        text({1: "x"})
