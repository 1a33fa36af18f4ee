"""JSON as the protocol needs it: compact UTF-8 out (Decimal written exactly), objects in with
every non-integer number as Decimal (money is never a binary float).

The stdlib's ``json.dumps(..., separators=...)`` and ``json.loads(..., parse_float=...)`` build
a new encoder or decoder on every call; these keep one, which is most of a request's Python cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from json import scanner
from typing import Any


class _HasDecimal(Exception):
    """Raised out of the fast encoder when a Decimal needs the exact path."""


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        raise _HasDecimal
    if isinstance(value, Mapping):  # any mapping is a JSON object, not just dict
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_encode_str = json.encoder.encode_basestring  # what ensure_ascii=False writes for a str
_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default
)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    # chunks(value, 0) -> the pieces of value's compact JSON text; no cycle check (a cycle
    # ends in RecursionError). Hot paths call it directly and fall back to dumps() on error.
    chunks: Callable[[Any, int], Sequence[str]] = _c_make_encoder(
        None, _default, _encode_str, None, ":", ",", False, False, False
    )
else:  # pragma: no cover - interpreters without the C accelerator

    def chunks(value: Any, _level: int) -> Sequence[str]:
        return (_encoder.encode(value),)


# Values that hold no keys: a payload made only of these needs no deeper key check.
_LEAVES = frozenset({str, int, float, bool, type(None), Decimal})


def _flat_with_str_keys(value: Mapping[Any, Any]) -> bool:
    """True for the common payload: str keys and leaf values only (one cheap pass)."""
    for key, item in value.items():
        if type(key) is not str or type(item) not in _LEAVES:
            return False
    return True


def _require_str_keys(value: Mapping[Any, Any]) -> None:
    """TypeError for a non-str key anywhere: json would quietly turn 1 or True into "1" or
    "true", and {1: x, "1": y} into an object with a duplicate key."""
    if _flat_with_str_keys(value):
        return
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"keys must be str, not {type(key).__name__}")
    for item in value.values():
        if isinstance(item, Mapping):
            _require_str_keys(item)
        elif isinstance(item, (list, tuple)):
            for element in item:
                if isinstance(element, (Mapping, list, tuple)):
                    _require_str_keys({"": element})


def dumps(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, non-ASCII kept as is. Raises TypeError/ValueError (NaN, a non-str
    key, a lone surrogate, an unsupported type) and RecursionError (a cycle)."""
    _require_str_keys(payload)
    try:
        text = "".join(chunks(payload, 0))
    except _HasDecimal:
        text = _dumps_with_decimals(payload)
    return text.encode("utf-8")


def text(value: Any) -> str:
    """Compact JSON text of any value, non-ASCII kept, each Decimal in plain notation
    ('2323.582', never '2.323582E+3'), as the API writes amounts: the sandbox's answers and the
    CLI's --json output. (dumps keeps a payload's Decimals as given: the bytes that are
    sealed must not change.)"""
    return _dumps_with_decimals(value, plain=True)


def _dumps_with_decimals(value: Any, plain: bool = False) -> str:
    """What dumps writes, with each Decimal as its exact number: the stdlib encoder cannot
    emit a number it did not format itself."""
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a non-finite Decimal is not a JSON number")
        return format(value, "f") if plain else str(value)
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            items.append(_encode_str(key) + ":" + _dumps_with_decimals(item, plain))
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_dumps_with_decimals(item, plain) for item in value) + "]"
    return _encoder.encode(value)  # None, bool, int, float: as json.dumps writes them


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


# NaN and Infinity are Python extensions, not JSON: refuse them rather than make floats.
_decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_not_json)
# scan(text, 0) -> (value, end); StopIteration when text does not start with a value.
scan: Callable[[str, int], tuple[Any, int]] = scanner.make_scanner(_decoder)  # type: ignore[arg-type]


def loads(data: bytes | str) -> Any:
    """Parse JSON with floats as Decimal. Raises ValueError (UnicodeDecodeError and
    json.JSONDecodeError are ValueErrors) or RecursionError.

    A number whose exponent is beyond what Decimal holds (``1e99999999999999999999``) makes
    Decimal raise decimal.InvalidOperation, an ArithmeticError: that is a ValueError here too,
    so that no caller sees a decimal exception for what is only malformed input."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    try:
        try:
            value, end = scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):  # surrounding whitespace, or an error: the full decoder decides
            value = _decoder.decode(text)
    except ArithmeticError:
        raise ValueError("a JSON number is out of Decimal's range") from None
    return value


def loads_object(data: bytes | str) -> dict[str, Any]:
    """loads() that insists on a JSON object."""
    value = loads(data)
    if not isinstance(value, dict):
        raise ValueError("JSON value is not an object")
    return value
