"""Amounts in the VP API's answers: a JSON number as an exact, bounded Decimal, or
ResponseFormatError naming the field.

The client decodes answers with ``parse_float=Decimal`` and refuses the NaN/Infinity constants,
so an amount arrives as an ``int`` or a ``Decimal`` built from the number's text. That text is
the server's (or anyone's in between): ``-1e999999999`` is a valid JSON number, and quantizing
or printing it raises ``decimal.Overflow`` or builds a string of a billion digits. So every
check here runs on the value's shape first, in constant time (``is_finite()``, ``adjusted()``),
and arithmetic only runs on values already known to be small.

What ``parse_amount`` accepts (SPEC.md section 5: amounts are JSON numbers with up to 6 decimal
places, money, never a binary float):

- an ``int`` (not ``bool``) or a ``Decimal``; a subclass of either is converted to the exact
  base type first (the value is kept digit for digit; none of the subclass's methods run).
  Anything else is refused: ``bool``, ``str`` (``"12.5"``: the API sends numbers), ``None``
  (the field is missing or null), ``float`` (a binary float is never money; the decoder
  never makes one), and any other type;
- a finite value (no NaN, sNaN or Infinity);
- with ``|amount| < 10**15`` (``AMOUNT_LIMIT``). A thousand trillion units is far above any
  wallet's balance in any currency (even where one US dollar is tens of thousands of units),
  and below ``2**53``, so every amount in range with its 6 places is exactly 21 significant
  digits or fewer and every integer amount is exact in a JavaScript number too. A zero written
  with a huge exponent (``0e999999999``) is refused the same way: it is the shape of the
  attack, not anything a server writes;
- exactly representable with at most 6 decimal places (``MAX_PLACES``). ``123.4567891`` is
  refused (rounding money silently is never right); ``1.5000000``, whose extra places are all
  zeros, is the exact value 1.5 and is accepted, as ``Decimal("1.500000")`` (so is
  ``0e-999999999``, as ``Decimal("0.000000")``: the cost stays constant either way).

What it returns: a plain ``Decimal`` equal to the number the server wrote, with an exponent
between -6 and 0, so ``str()`` never uses scientific notation or gives more than 6 places or
21 digits: ``1e2`` gives ``Decimal("100")``, ``-0.0`` gives ``Decimal("0.0")`` (no negative
zero), ``2323.582`` stays ``Decimal("2323.582")``. Whatever the caller does next (compare,
negate, quantize, print as JSON) is then cheap and cannot overflow.

Cost: about 0.25-0.3 us for an accepted value (one quantize under a private context, one
``plus``; an int is a range check and ``Decimal(int)``); a refusal, ``-1e999999999`` or a
million-digit integer included, takes 2-4 us, most of it building the exception. No check
depends on the thread's decimal context (its precision or traps). Error messages show at most
a short, rounded preview of a value, never its full text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    Clamped,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
)
from typing import Any

from vpseal.api_errors import ResponseFormatError

MAX_PLACES = 6
"""Decimal places an amount may have (the API's own precision)."""

MAX_INTEGER_DIGITS = 15
AMOUNT_LIMIT = 10**MAX_INTEGER_DIGITS
"""Every accepted amount has ``-AMOUNT_LIMIT < amount < AMOUNT_LIMIT``."""

_MAX_DIGITS = MAX_INTEGER_DIGITS + MAX_PLACES  # 21: the longest coefficient an amount has
_MICRO = Decimal(1).scaleb(-MAX_PLACES)  # 1E-6
_ALL_TRAPS = [
    Clamped,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
]

# quantize(v, 1E-6) under _EXACT raises unless it only appends zeros, i.e. unless v's exponent
# is at least -6 (for a non-zero v: a zero discards no digit, so zeros are sorted out before).
# Callers have checked adjusted() < 15 first, so the result has at most 21 digits: well inside
# the precision, and no Overflow is possible.
_EXACT = Context(prec=_MAX_DIGITS + 7, Emax=999_999, Emin=-999_999, traps=_ALL_TRAPS)
# plus() under _CANONICAL: clamp=1 with Emax = prec - 1 puts the largest exponent at 0, so
# 1E+2 becomes 100 (the Clamped signal is the point, not an error); plus() also turns -0 into
# 0. Every other signal is trapped: the callers' checks leave no rounding to do.
_CANONICAL = Context(
    prec=_MAX_DIGITS,
    Emax=_MAX_DIGITS - 1,
    Emin=-999_999,
    clamp=1,
    traps=[t for t in _ALL_TRAPS if t is not Clamped],
)
# For values whose exponent is below -6 (the rare path): round to 6 places without trapping,
# then compare, so that 1.5000000 is accepted and 1.5000001 refused.
_LOOSE = Context(prec=_MAX_DIGITS + 7, Emax=999_999, Emin=-999_999, traps=[])
# Error messages: a value rounded to a few digits (a short string whatever the input).
_PREVIEW = Context(prec=12, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])
_ZERO = Decimal(0)
_ZERO_PLACES = _ZERO.scaleb(-MAX_PLACES)  # 0.000000

_exact_quantize = _EXACT.quantize
_canonical = _CANONICAL.plus


def _fail(name: str, problem: str) -> ResponseFormatError:
    return ResponseFormatError(f"response data.{name} {problem}")


def _preview_decimal(value: Decimal) -> str:
    """At most 12 significant digits of a finite Decimal, marked when rounded; constant size
    whatever the exponent or the number of digits."""
    shown = _PREVIEW.plus(value)
    return str(shown) if shown == value else f"about {shown}"


def _preview_int(value: int) -> str:
    """The digits of a small int, else only its size (str() of a huge int is slow, and
    refused beyond 4300 digits)."""
    if -(10**24) < value < 10**24:
        return str(value)
    digits = int(value.bit_length() * math.log10(2)) + 1
    return f"an integer of about {digits} digits"


def _preview_text(value: str) -> str:
    return repr(value) if len(value) <= 24 else repr(value[:24]) + "..."


def _decimal(value: Decimal, name: str) -> Decimal:
    """The checks for an exact Decimal (never a subclass)."""
    if not value.is_finite():
        kind = "NaN" if value.is_nan() else "infinite"
        raise _fail(name, f"is {kind}, not an amount")
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        if value.is_zero():
            raise _fail(name, f"is a zero written with exponent {value.adjusted()}")
        raise _fail(name, f"is out of range ({_preview_decimal(value)}; amounts are below 10**15)")
    if value.is_zero():  # a zero's adjusted() is its exponent: keep it between -6 and 0
        exponent = value.adjusted()
        if exponent < -MAX_PLACES:
            return _ZERO_PLACES
        return _ZERO if exponent > 0 else _canonical(value)  # plus() makes -0 into 0
    try:
        _exact_quantize(value, _MICRO)
        return _canonical(value)
    except DecimalException:
        pass
    # The exponent is below -6: more places, or zeros beyond the 6th place.
    try:
        rounded = _LOOSE.quantize(value, _MICRO)
        if rounded == value:
            return _canonical(rounded)
    except DecimalException:  # pragma: no cover - nothing here can signal; fail closed anyway
        pass
    raise _fail(name, f"has more than {MAX_PLACES} decimal places ({_preview_decimal(value)})")


def parse_amount(value: object, name: str) -> Decimal:
    """An amount field of an answer as an exact Decimal, or ResponseFormatError.

    value: what the client's decoder gave for the field (``data.get(name)``); name: the
    field's name in the answer's data (``"amount"``), used in the message
    ("response data.amount ..."). The rules, the chosen bound and the form of the result are
    in this module's docstring."""
    if type(value) is Decimal:
        # the common case, inline: finite, non-zero, 15 digits or fewer before the point and
        # 6 or fewer after it (as written); everything else goes to _decimal
        if value and value.is_finite() and value.adjusted() < MAX_INTEGER_DIGITS:
            try:
                _exact_quantize(value, _MICRO)
                return _canonical(value)
            except DecimalException:
                pass
        return _decimal(value, name)
    if type(value) is int:
        if -AMOUNT_LIMIT < value < AMOUNT_LIMIT:
            return Decimal(value)
        problem = f"is out of range ({_preview_int(value)}; amounts are below 10**15)"
        raise _fail(name, problem)
    return _unusual(value, name)


def _unusual(value: object, name: str) -> Decimal:
    """Subclasses of int and Decimal (converted to the exact base type), and refusals."""
    if value is None:
        raise _fail(name, "is missing or null")
    if isinstance(value, bool):
        raise _fail(name, f"is {str(value).lower()}, not a number")
    if isinstance(value, int):
        return parse_amount(int.__int__(value), name)  # the exact int, no override runs
    if isinstance(value, Decimal):
        return _decimal(Decimal(value), name)  # Decimal(d) copies d's digits exactly
    if isinstance(value, str):
        raise _fail(name, f"is a string ({_preview_text(value)}), not a JSON number")
    if isinstance(value, float):
        raise _fail(name, "is a binary float, not an exact number (decode with Decimal)")
    raise _fail(name, f"is not a number ({type(value).__name__})")


def check_cashout_amounts(amount: Decimal, balance: Decimal) -> None:
    """Raise ResponseFormatError unless a code-0 cash-out answer's amounts describe a success.

    amount and balance must come from parse_amount. ``POST /v2/members/cashout`` withdraws
    the whole balance and answers ``{"amount": all that was withdrawn, "balance": 0}``
    (SPEC.md section 5). So code 0 with a negative amount, or with a balance that is not 0,
    is not a success whatever the code says: the server did something other than the
    documented cash-out, and the caller must not credit the amount elsewhere. The client
    should settle such a cash-out through the transaction query (as for any answer it cannot
    read) rather than report it. An amount of 0 is accepted: it claims no money moved (the
    docs answer code 2 for an empty balance, but a zero withdrawal overstates nothing).
    """
    if amount < 0:
        raise _fail("amount", f"of a successful cash-out is negative ({amount})")
    if balance != 0:
        raise _fail("balance", f"after a successful cash-out is {balance}, not 0")


def parse_cashout_amounts(data: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """(amount, balance) of a code-0 cash-out answer's data: parse_amount on both fields,
    then check_cashout_amounts."""
    amount = parse_amount(data.get("amount"), "amount")
    balance = parse_amount(data.get("balance"), "balance")
    check_cashout_amounts(amount, balance)
    return amount, balance


__all__ = [
    "AMOUNT_LIMIT",
    "MAX_INTEGER_DIGITS",
    "MAX_PLACES",
    "check_cashout_amounts",
    "parse_amount",
    "parse_cashout_amounts",
]
