"""vpseal.amounts: answer amounts as exact, bounded Decimals (issue 8 item 4).

Each refusal is a ResponseFormatError naming the field, never a decimal exception, and the
shapes of attack (huge exponents, huge integers, huge coefficients) are refused in constant
time without building their digits. The oracle of the property tests uses Fraction: exact
rational arithmetic, independent of decimal contexts.
"""

from __future__ import annotations

import decimal
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vpseal
from vpseal.amounts import (
    AMOUNT_LIMIT,
    MAX_PLACES,
    check_cashout_amounts,
    parse_amount,
    parse_cashout_amounts,
)
from vpseal.api_errors import ResponseFormatError


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# What the client's decoder does with an answer (parse_float=Decimal, no NaN/Infinity).
_decode = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constant).decode


def _refused(value: object, name: str = "amount") -> ResponseFormatError:
    with pytest.raises(ResponseFormatError) as info:
        parse_amount(value, name)
    error = info.value
    text = str(error)
    assert text.startswith(f"response data.{name} "), text
    assert len(text) < 160, text  # a preview at most, never the raw value
    assert isinstance(error, vpseal.VPSealError)
    assert not isinstance(error, ArithmeticError)
    return error


def _canonical(result: Decimal) -> None:
    """What every accepted amount looks like: a plain Decimal, exponent -6..0, no -0."""
    assert type(result) is Decimal
    exponent = result.as_tuple().exponent
    assert isinstance(exponent, int) and -MAX_PLACES <= exponent <= 0
    assert "E" not in str(result) and "e" not in str(result)
    assert not (result.is_zero() and result.is_signed())
    assert -AMOUNT_LIMIT < result < AMOUNT_LIMIT


@contextmanager
def hostile_context() -> Iterator[None]:
    """A thread context a caller might have: tiny precision, every signal trapped."""
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.Emax = 5
        ctx.Emin = -5
        for signal in (decimal.Inexact, decimal.Rounded, decimal.Clamped, decimal.Subnormal):
            ctx.traps[signal] = True
        yield


# -- explicit cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("2323.582"), "2323.582"),
        (Decimal("-150.25"), "-150.25"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("-0.000001"), "-0.000001"),
        (Decimal("999999999999999.999999"), "999999999999999.999999"),
        (Decimal("-999999999999999.999999"), "-999999999999999.999999"),
        (Decimal("1.500000"), "1.500000"),
        (Decimal("1.5000000"), "1.500000"),  # zeros beyond the 6th place: the exact value 1.5
        (Decimal("1." + "0" * 100_000), "1.000000"),
        (Decimal("1E+2"), "100"),  # never scientific notation
        (Decimal("-1.5E+3"), "-1500"),
        (Decimal("0"), "0"),
        (Decimal("-0"), "0"),
        (Decimal("-0.00"), "0.00"),
        (Decimal("0E+5"), "0"),
        (Decimal("0E-7"), "0.000000"),
        (Decimal("-0E-999999999"), "0.000000"),
        (0, "0"),
        (1500, "1500"),
        (-1500, "-1500"),
        (AMOUNT_LIMIT - 1, "999999999999999"),
        (-(AMOUNT_LIMIT - 1), "-999999999999999"),
    ],
)
def test_accepted(value: object, expected: str) -> None:
    result = parse_amount(value, "amount")
    assert str(result) == expected
    assert result == Decimal(expected)
    _canonical(result)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (Decimal("-1e999999999"), "out of range"),
        (Decimal("1e999999999999999999"), "out of range"),  # the largest exponent Decimal has
        (Decimal("1e-999999999"), "more than 6 decimal places"),
        (Decimal("123.4567891"), "more than 6 decimal places"),
        (Decimal("0.0000001"), "more than 6 decimal places"),
        (Decimal("1." + "0" * 100_000 + "1"), "more than 6 decimal places"),
        (Decimal("999999999999999.9999995"), "more than 6 decimal places"),
        (Decimal("1E+15"), "out of range"),
        (Decimal("-1000000000000000.5"), "out of range"),
        (Decimal("123456789012345678901234567890"), "out of range"),
        (Decimal("0E+15"), "zero written with exponent 15"),
        (Decimal("0E+999999999"), "zero written with exponent"),
        (Decimal("NaN"), "NaN"),
        (Decimal("-sNaN123"), "NaN"),
        (Decimal("Infinity"), "infinite"),
        (Decimal("-Infinity"), "infinite"),
        (10**20, "out of range"),
        (AMOUNT_LIMIT, "out of range"),
        (-AMOUNT_LIMIT, "out of range"),
        (True, "is true, not a number"),
        (False, "is false, not a number"),
        ("12.5", "is a string ('12.5')"),
        ("", "is a string"),
        (None, "missing or null"),
        (1.5, "binary float"),
        (float("nan"), "binary float"),
        ([1], "not a number (list)"),
        ({"value": 1}, "not a number (dict)"),
        (b"12", "not a number (bytes)"),
        (Fraction(1, 2), "not a number (Fraction)"),
    ],
)
def test_refused(value: object, says: str) -> None:
    assert says in str(_refused(value))


def test_message_names_the_field_and_truncates() -> None:
    assert "data.balance" in str(_refused(Decimal("-1e999999999"), "balance"))
    error = _refused("9" * 10_000, "amount")
    assert "9" * 30 not in str(error)
    error = _refused(Decimal("1" * 5000), "amount")
    assert "1" * 30 not in str(error) and "about 1.11111111111E+4999" in str(error)
    big = _decode("1" * 4300)  # the longest integer json reads by default (3.11+)
    assert "an integer of about 4300 digits" in str(_refused(big, "amount"))


def test_values_as_the_client_decoder_gives_them() -> None:
    """The issue's values, through real JSON text."""
    for text in (
        "-1e999999999",
        "1e-999999999",
        "123.4567891",
        "100000000000000000000",
        "true",
        '"12.5"',
        "null",
        "1e999999999999999999",
        "-0.0000001",
    ):
        _refused(_decode('{"amount": ' + text + "}")["amount"])
    data = _decode('{"amount": 2323.582, "balance": 0, "neg": -1.5e3, "z": 0.000}')
    assert parse_amount(data["amount"], "amount") == Decimal("2323.582")
    assert str(parse_amount(data["neg"], "neg")) == "-1500"
    assert str(parse_amount(data["z"], "z")) == "0.000"
    assert parse_amount(data["balance"], "balance") == 0


def test_nan_cannot_arrive_but_is_refused_anyway() -> None:
    """The decoder refuses the NaN/Infinity constants, and parse_float never sees them;
    a NaN Decimal made some other way is still refused."""
    for text in ("NaN", "-Infinity", "Infinity"):
        with pytest.raises(ValueError, match="not a JSON number"):
            _decode('{"amount": ' + text + "}")
    for value in (Decimal("NaN"), Decimal("sNaN"), Decimal("-NaN7")):
        with hostile_context():
            _refused(value)


# -- subclasses: converted to the exact base type; their overrides never run --------------------


class _LyingInt(int):
    def __lt__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return True

    def __int__(self) -> int:
        return 1

    def __index__(self) -> int:
        return 1


class _LyingDecimal(Decimal):
    def is_finite(self) -> bool:
        return True

    def adjusted(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return True

    def quantize(self, *args: Any, **kwargs: Any) -> Decimal:
        return Decimal(1)


def test_subclasses_are_converted_to_the_exact_base_type() -> None:
    result = parse_amount(_LyingInt(1500), "amount")
    assert type(result) is Decimal and result == 1500
    _refused(_LyingInt(10**30))
    result = parse_amount(_LyingDecimal("2323.582"), "amount")
    assert type(result) is Decimal and str(result) == "2323.582"
    assert type(parse_amount(_LyingDecimal("1E+2"), "amount")) is Decimal
    for text in ("sNaN", "Infinity", "-1e999999999", "123.4567891", "1E+15"):
        _refused(_LyingDecimal(text))


# -- cost: the shapes of attack are refused in constant time -----------------------------------


def test_huge_exponents_and_integers_are_refused_fast() -> None:
    """Microseconds each, whatever the exponent or the size of the integer (200 of each well
    under a second, even on a slow CI machine; one quantize of 1e999999999 into plain
    digits would need a billion)."""
    values: list[object] = [
        Decimal("-1e999999999"),
        Decimal("1e999999999999999999"),
        Decimal("1e-999999999"),
        Decimal("-1e-999999999999999999"),
        Decimal("0E+999999999"),
        _decode("1" * 4300),
    ]
    values.append(10**1_000_000)  # made without str(): an int any decoder could give
    for value in values:
        start = time.perf_counter()
        for _ in range(200):
            with pytest.raises(ResponseFormatError):
                parse_amount(value, "amount")
        assert time.perf_counter() - start < 1.0, value.__class__


def test_no_decimal_signal_escapes_under_any_thread_context() -> None:
    """Every check uses vpseal's own contexts: the caller's precision and traps change
    nothing (a prec=3 context would otherwise round 2323.582 or raise)."""
    with hostile_context():
        assert str(parse_amount(Decimal("2323.582"), "amount")) == "2323.582"
        assert str(parse_amount(Decimal("1.5000000"), "amount")) == "1.500000"
        assert str(parse_amount(Decimal("1E+2"), "amount")) == "100"
        assert str(parse_amount(12345678, "amount")) == "12345678"
        for value in ("-1e999999999", "1e-999999999", "123.4567891", "NaN", "1E+15"):
            _refused(Decimal(value))


# -- properties ---------------------------------------------------------------------------------

valid_places = st.integers(min_value=0, max_value=MAX_PLACES)


@st.composite
def valid_amounts(draw: st.DrawFn) -> Decimal:
    """Any amount the API can send: up to 15 digits before the point and 6 after."""
    places = draw(valid_places)
    limit = AMOUNT_LIMIT * 10**places - 1
    return Decimal(draw(st.integers(min_value=-limit, max_value=limit))).scaleb(-places)


@given(amount=valid_amounts(), extra_zeros=st.integers(min_value=0, max_value=40))
def test_every_valid_amount_is_kept_exactly(amount: Decimal, extra_zeros: int) -> None:
    """Accepted with its value unchanged, also when written with zeros beyond the 6th place
    or through JSON text."""
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    padded = Decimal((sign, (*digits, *(0,) * extra_zeros), exponent - extra_zeros))
    for value in (amount, padded, _decode(str(amount)), _decode(str(padded))):
        result = parse_amount(value, "amount")
        assert result == amount
        _canonical(result)
        with hostile_context():
            assert parse_amount(value, "amount") == amount
    if extra_zeros == 0:  # as the server wrote it: kept digit for digit
        assert str(parse_amount(amount, "amount")) == str(amount)


def _oracle(value: Decimal) -> bool:
    """Accepted iff finite, |value| < 10**15, and value * 10**6 is an integer (Fraction is
    exact); a zero must not be written with an exponent of 15 or more."""
    if not value.is_finite():
        return False
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if value.is_zero():
        return exponent < 15
    if not -MAX_PLACES - 1 <= value.adjusted() <= 20:  # 10**20 or more, or below 10**-6
        return False  # (and Fraction of 1E+999999 would take a while)
    exact = Fraction(value)
    return abs(exact) < AMOUNT_LIMIT and (exact * 10**MAX_PLACES).denominator == 1


any_decimals = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=7),
    st.builds(
        lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
        st.integers(0, 1),
        st.lists(st.integers(0, 9), min_size=1, max_size=30),
        st.integers(min_value=-40, max_value=30),
    ),
)


@given(value=any_decimals)
def test_any_decimal_matches_the_oracle(value: Decimal) -> None:
    if _oracle(value):
        result = parse_amount(value, "amount")
        assert Fraction(result) == Fraction(value)
        _canonical(result)
    else:
        _refused(value)


@given(value=st.integers() | st.integers(min_value=-(10**40), max_value=10**40))
def test_any_int_matches_the_bound(value: int) -> None:
    if -AMOUNT_LIMIT < value < AMOUNT_LIMIT:
        result = parse_amount(value, "amount")
        assert result == value
        _canonical(result)
    else:
        _refused(value)


@given(exponent=st.integers(min_value=-(10**18) + 1, max_value=10**18 - 1), sign=st.integers(0, 1))
def test_any_exponent_never_raises_a_decimal_signal(exponent: int, sign: int) -> None:
    """Only ResponseFormatError or a canonical amount, whatever the exponent."""
    value = Decimal((sign, (1,), exponent))
    try:
        result = parse_amount(value, "amount")
    except ResponseFormatError:
        assert not -MAX_PLACES <= exponent <= 14
    else:
        assert -MAX_PLACES <= exponent <= 14 and result == value
        _canonical(result)


# -- cash-out answers ---------------------------------------------------------------------------


def test_cashout_amounts_of_a_success() -> None:
    check_cashout_amounts(Decimal("2323.582"), Decimal(0))
    check_cashout_amounts(Decimal("2323.582"), Decimal("0.000000"))
    check_cashout_amounts(Decimal(0), Decimal(0))  # nothing moved: claims nothing
    assert parse_cashout_amounts(_decode('{"amount": 2323.582, "balance": 0}')) == (
        Decimal("2323.582"),
        Decimal(0),
    )
    assert parse_cashout_amounts({"amount": 10, "balance": Decimal("-0.0")}) == (10, 0)


@pytest.mark.parametrize(
    ("amount", "balance", "field", "says"),
    [
        (Decimal("-5"), Decimal(0), "amount", "negative"),
        (Decimal("-0.000001"), Decimal(0), "amount", "negative"),
        (Decimal("5"), Decimal("0.000001"), "balance", "not 0"),
        (Decimal("5"), Decimal("-1"), "balance", "not 0"),
        (Decimal("5"), Decimal("100"), "balance", "not 0"),
    ],
)
def test_cashout_amounts_that_are_not_a_success(
    amount: Decimal, balance: Decimal, field: str, says: str
) -> None:
    with pytest.raises(ResponseFormatError, match=f"data.{field} .*{says}"):
        check_cashout_amounts(amount, balance)
    with pytest.raises(ResponseFormatError, match=f"data.{field} "):
        parse_cashout_amounts({"amount": amount, "balance": balance})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount": Decimal("-1e999999999"), "balance": 0}, "amount"),
        ({"amount": 5}, "balance"),
        ({"balance": 0}, "amount"),
        ({"amount": "5", "balance": 0}, "amount"),
        ({"amount": 5, "balance": True}, "balance"),
        ({"amount": 5, "balance": Decimal("1e-999999999")}, "balance"),
    ],
)
def test_cashout_data_that_cannot_be_read(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ResponseFormatError, match=f"^response data.{field} "):
        parse_cashout_amounts(data)
