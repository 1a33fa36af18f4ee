"""Off-by-one and exact-size boundaries, and which of two layers that repeat a check decides.

- the wire string at its minimum length and part sizes;
- x-timestamp through timestamp_text/verify_signature: every malformed spelling is refused
  (ValueError/TypeError, or False from verify_signature), never signed or verified;
- the body limit of open_request and open_many (max_body) at exactly the limit and one byte
  over, on the fast path (lowercase header dict, bytes body) and each slow one (other header
  spellings, bytearray/memoryview/str bodies);
- the fast path is taken where it should be, and the slow path's Python checks run only there
  (spied), with the same verdicts as the engine's.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

import vpseal
from vpseal import envelope as envelope_module
from vpseal.errors import RequestFormatError, SignatureError, WireFormatError
from vpseal.signing import sign, signature_string, timestamp_text, verify_signature
from vpseal.wire import _MIN_LEN, decode_wire, encode_wire

KEY = "11" * 32
AGENT = "agent-b"
NOW = 1_700_000_000_000


# ------------------------------------------------------------------------------ wire


def test_the_shortest_wire_string() -> None:
    iv, tag = bytes(12), bytes(range(16))
    for size in (1, 2, 3):
        text = encode_wire(iv, tag, b"\x01" * size)
        assert len(text) == _MIN_LEN == 44
        assert decode_wire(text) == (iv, tag, b"\x01" * size)
    text = encode_wire(iv, tag, b"\x01" * 4)
    assert len(text) == 48 and decode_wire(text)[2] == b"\x01" * 4


@pytest.mark.parametrize("cut", [1, 4, 40, 43])
def test_a_wire_string_shorter_than_the_minimum(cut: int) -> None:
    text = encode_wire(bytes(12), bytes(16), b"abc")[:cut]
    with pytest.raises(WireFormatError, match=f"too short: {cut} characters, need 44"):
        decode_wire(text)


@pytest.mark.parametrize("extra", [1, 2, 3])
def test_a_wire_string_not_a_multiple_of_4(extra: int) -> None:
    with pytest.raises(WireFormatError, match="multiple of 4"):
        decode_wire(encode_wire(bytes(12), bytes(16), b"abc") + "A" * extra)


def test_empty_ciphertext_is_refused_both_ways() -> None:
    with pytest.raises(WireFormatError, match="ciphertext must not be empty"):
        encode_wire(bytes(12), bytes(16), b"")
    # 44 characters whose last quad decodes to nothing: "====" is not canonical base64
    with pytest.raises(WireFormatError):
        decode_wire(
            base64.b64encode(bytes(12)).decode() + base64.b64encode(bytes(16)).decode() + "===="
        )


@pytest.mark.parametrize(("iv", "tag"), [(11, 16), (13, 16), (12, 15), (12, 17), (0, 16), (12, 0)])
def test_part_sizes_are_exact(iv: int, tag: int) -> None:
    with pytest.raises(WireFormatError, match="iv must be 12" if iv != 12 else "tag must be 16"):
        encode_wire(bytes(iv), bytes(tag), b"x")


def test_iv_and_tag_lengths_are_checked_after_decoding() -> None:
    # 16 characters of canonical base64 that decode to 11 bytes (a padded last quad)
    iv_11 = base64.b64encode(bytes(11)).decode()  # 16 characters with one '='
    assert len(iv_11) == 16
    text = iv_11 + base64.b64encode(bytes(16)).decode() + "AAAA"
    with pytest.raises(WireFormatError, match="iv or tag has the wrong length"):
        decode_wire(text)
    tag_17 = base64.b64encode(bytes(17)).decode()  # 24 characters with one '='
    assert len(tag_17) == 24
    text = base64.b64encode(bytes(12)).decode() + tag_17 + "AAAA"
    with pytest.raises(WireFormatError, match="iv or tag has the wrong length"):
        decode_wire(text)


def test_decode_wire_takes_only_str() -> None:
    with pytest.raises(WireFormatError, match="must be str, not bytes"):
        decode_wire(b"A" * 44)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ timestamps


@pytest.mark.parametrize(
    ("timestamp", "want"),
    [(0, "0"), ("0", "0"), (NOW, str(NOW)), ("007", "007"), (10**30, "1" + "0" * 30)],
)
def test_timestamps_that_sign(timestamp: Any, want: str) -> None:
    assert timestamp_text(timestamp) == want
    digest = sign(AGENT, timestamp, "n", b"body")
    assert digest == hashlib.sha256(f"{AGENT}{want}n".encode() + b"body").hexdigest()
    assert verify_signature(AGENT, timestamp, "n", b"body", digest)


MALFORMED = [
    "",
    "-1",
    "+1",
    " 1",
    "1 ",
    "1.0",
    "1e3",
    "0x10",
    "\u0661\u0662",
    "\u00b2",
    "\uff11",
    "1\n",
    "1_000",
]


@pytest.mark.parametrize("timestamp", [*MALFORMED, -1])
def test_malformed_timestamps_are_refused(timestamp: Any) -> None:
    with pytest.raises(ValueError, match="digits"):
        timestamp_text(timestamp)
    with pytest.raises(ValueError):
        sign(AGENT, timestamp, "n", b"body")
    good = sign(AGENT, "1", "n", b"body")
    assert verify_signature(AGENT, timestamp, "n", b"body", good) is False


@pytest.mark.parametrize("timestamp", [True, False, 1.0, None, b"1", [1]])
def test_timestamps_of_the_wrong_type(timestamp: Any) -> None:
    with pytest.raises(TypeError, match="timestamp must be str or int"):
        timestamp_text(timestamp)
    with pytest.raises(TypeError):
        verify_signature(AGENT, timestamp, "n", b"body", "0" * 64)


def test_verify_signature_edges() -> None:
    good = sign(AGENT, NOW, "n", "body", "pipe")
    assert verify_signature(AGENT, NOW, "n", "body", good.upper(), "pipe")
    assert not verify_signature(AGENT, NOW, "n", "body", good, "transfer")
    assert not verify_signature(AGENT, NOW, "n", "body", good[:-1], "pipe")
    assert not verify_signature(AGENT, NOW, "n", "body", good + "0", "pipe")
    assert not verify_signature(AGENT, NOW, "n", "body", good[:-1] + "é", "pipe")
    assert not verify_signature(AGENT, NOW, "n", "body", None, "pipe")  # type: ignore[arg-type]
    assert not verify_signature(AGENT, NOW, "\udc80", "body", good, "pipe")  # lone surrogate
    with pytest.raises(ValueError, match="scheme"):
        verify_signature(AGENT, NOW, "n", "body", good, "PIPE")  # type: ignore[arg-type]
    assert signature_string(AGENT, NOW, "n", b"b", "pipe") == f"{AGENT}|{NOW}|n|b".encode()
    assert signature_string(AGENT, NOW, "n", bytearray(b"b")) == f"{AGENT}{NOW}nb".encode()
    with pytest.raises(TypeError, match="data must be str or bytes"):
        signature_string(AGENT, NOW, "n", 5)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ body limits


def _sealed() -> vpseal.SealedRequest:
    creds = vpseal.Credentials(AGENT, KEY)
    return vpseal.seal_request(creds, {"username": "u", "transId": "t"}, timestamp_ms=NOW)


def _capitalized(headers: dict[str, str]) -> dict[str, str]:
    return {k.title(): v for k, v in headers.items()}


BODIES: dict[str, Callable[[bytes], Any]] = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "str": lambda b: b.decode("utf-8"),
}
HEADERS: dict[str, Callable[[dict[str, str]], Any]] = {
    "lowercase": dict,
    "capitalized": _capitalized,
}


def _open(headers: Any, body: Any, max_body: int, many: bool) -> Any:
    creds = vpseal.Credentials(AGENT, KEY)
    guard = vpseal.ReplayGuard()
    if many:
        (result,) = vpseal.open_many(
            creds, [(headers, body)], guard=guard, now_ms=NOW, max_body=max_body
        )
        if isinstance(result, Exception):
            raise result
        return result
    return vpseal.open_request(creds, headers, body, guard=guard, now_ms=NOW, max_body=max_body)


@pytest.mark.parametrize("many", [False, True], ids=["open_request", "open_many"])
@pytest.mark.parametrize("headers_kind", list(HEADERS))
@pytest.mark.parametrize("body_kind", list(BODIES))
def test_a_body_of_exactly_max_body_opens_one_byte_more_does_not(
    many: bool, headers_kind: str, body_kind: str
) -> None:
    sealed = _sealed()
    size = len(sealed.body)
    headers = HEADERS[headers_kind](dict(sealed.headers))
    body = BODIES[body_kind](sealed.body)
    opened = _open(headers, body, size, many)
    assert opened.payload == {"username": "u", "transId": "t"}
    with pytest.raises(RequestFormatError, match=f"body larger than {size - 1} bytes"):
        _open(headers, BODIES[body_kind](sealed.body), size - 1, many)


def test_the_default_body_limit_is_one_mib() -> None:
    assert envelope_module.MAX_BODY_BYTES == 1 << 20
    sealed = _sealed()
    big = sealed.body + b" " * ((1 << 20) + 1 - len(sealed.body))
    for many in (False, True):
        with pytest.raises(RequestFormatError, match="body larger than 1048576 bytes"):
            _open(dict(sealed.headers), big, envelope_module.MAX_BODY_BYTES, many)


# ------------------------------------------------------------------------------ which path


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    calls: dict[str, list[Any]] = {
        "receive": [],
        "check_formats": [],
        "as_body": [],
        "refused_in_python": [],
    }
    real_receive = envelope_module._receive
    real_check = envelope_module._check_formats
    real_as_body = envelope_module._as_body

    def receive(*args: Any) -> Any:
        calls["receive"].append(args[1])
        return real_receive(*args)

    def check_formats(*args: Any) -> Any:
        calls["check_formats"].append(args)
        try:
            return real_check(*args)
        except Exception as exc:
            calls["refused_in_python"].append(exc)
            raise

    def as_body(*args: Any) -> Any:
        calls["as_body"].append(type(args[0]).__name__)
        return real_as_body(*args)

    monkeypatch.setattr(envelope_module, "_receive", receive)
    monkeypatch.setattr(envelope_module, "_check_formats", check_formats)
    monkeypatch.setattr(envelope_module, "_as_body", as_body)
    return calls


@pytest.mark.parametrize("many", [False, True], ids=["open_request", "open_many"])
def test_lowercase_headers_and_bytes_take_the_fast_path(
    spies: dict[str, list[Any]], many: bool
) -> None:
    sealed = _sealed()
    _open(dict(sealed.headers), sealed.body, 1 << 20, many)
    assert spies == {"receive": [], "check_formats": [], "as_body": [], "refused_in_python": []}


@pytest.mark.parametrize("many", [False, True], ids=["open_request", "open_many"])
def test_other_bodies_are_converted_once_on_the_fast_path(
    spies: dict[str, list[Any]], many: bool
) -> None:
    sealed = _sealed()
    _open(dict(sealed.headers), bytearray(sealed.body), 1 << 20, many)
    assert spies["as_body"] == ["bytearray"] and spies["receive"] == []


@pytest.mark.parametrize("many", [False, True], ids=["open_request", "open_many"])
def test_other_header_spellings_take_the_slow_path(spies: dict[str, list[Any]], many: bool) -> None:
    sealed = _sealed()
    _open(_capitalized(dict(sealed.headers)), sealed.body, 1 << 20, many)
    assert len(spies["receive"]) == 1 and len(spies["check_formats"]) == 1


@pytest.mark.parametrize("many", [False, True], ids=["open_request", "open_many"])
@pytest.mark.parametrize(
    ("header", "value", "error", "why"),
    [
        ("x-timestamp", "", RequestFormatError, "x-timestamp"),
        ("x-timestamp", "1" * 17, RequestFormatError, "x-timestamp"),
        ("x-timestamp", "12a", RequestFormatError, "x-timestamp"),
        ("x-timestamp", "-1", RequestFormatError, "x-timestamp"),
        ("x-nonce", "0" * 31, RequestFormatError, "x-nonce"),
        ("x-nonce", "0" * 33, RequestFormatError, "x-nonce"),
        ("x-nonce", "A" * 32, RequestFormatError, "x-nonce"),
    ],
)
def test_both_layers_refuse_malformed_headers_alike(
    spies: dict[str, list[Any]], many: bool, header: str, value: str, error: type, why: str
) -> None:
    """The engine checks the headers on the fast path; _check_formats repeats those checks in
    Python on the slow path. Each layer alone must refuse, with the same error."""
    sealed = _sealed()
    headers = dict(sealed.headers)
    headers[header] = value
    with pytest.raises(error, match=why) as fast:
        _open(headers, sealed.body, 1 << 20, many)
    assert spies["check_formats"] == []  # the engine's verdict, not Python's
    with pytest.raises(error, match=why) as slow:
        _open(_capitalized(headers), sealed.body, 1 << 20, many)
    assert len(spies["check_formats"]) == 1
    assert spies["refused_in_python"] == [slow.value]  # before the engine saw it
    assert str(fast.value) == str(slow.value)


@pytest.mark.parametrize("many", [False, True], ids=["open_request", "open_many"])
def test_a_non_ascii_signature_is_refused_in_python(
    spies: dict[str, list[Any]], many: bool
) -> None:
    """The engine takes ASCII headers only: a non-ASCII one always goes the slow way."""
    sealed = _sealed()
    headers = dict(sealed.headers)
    headers["x-signature"] = "\u00e9" * 64
    with pytest.raises(SignatureError):
        _open(headers, sealed.body, 1 << 20, many)
    assert len(spies["receive"]) == 1 and len(spies["check_formats"]) == 1


@pytest.mark.parametrize("timestamp", ["1" * 16, "0" * 16])
def test_a_sixteen_digit_timestamp_passes_both_layers_format_check(timestamp: str) -> None:
    sealed = _sealed()
    headers = dict(sealed.headers)
    headers["x-timestamp"] = timestamp
    for spelled in (headers, _capitalized(headers)):
        with pytest.raises(SignatureError):  # well-formed, so it reaches the signature check
            _open(spelled, sealed.body, 1 << 20, False)


def test_a_good_request_is_opened_without_the_general_verdict_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """open_request's fast path turns the engine's OK into the result itself; _finish (which
    also handles OK, more slowly) is only for the other verdicts and the slow path."""
    calls: list[int] = []
    real = envelope_module._finish

    def finish(got: Any, status: int, *rest: Any) -> Any:
        calls.append(status)
        return real(got, status, *rest)

    monkeypatch.setattr(envelope_module, "_finish", finish)
    sealed = _sealed()
    _open(dict(sealed.headers), sealed.body, 1 << 20, False)
    assert calls == []
    headers = dict(sealed.headers)
    headers["x-signature"] = "0" * 64
    with pytest.raises(SignatureError):
        _open(headers, sealed.body, 1 << 20, False)
    assert len(calls) == 1
    _open(_capitalized(dict(sealed.headers)), sealed.body, 1 << 20, False)
    assert len(calls) == 2


@pytest.mark.parametrize("timestamp", [0, 1, 10**16 - 1])
def test_seal_request_timestamps_in_range(timestamp: int) -> None:
    creds = vpseal.Credentials(AGENT, KEY)
    sealed = vpseal.seal_request(creds, {"a": 1}, timestamp_ms=timestamp)
    assert sealed.headers["x-timestamp"] == str(timestamp)


@pytest.mark.parametrize("timestamp", [-1, 10**16, True, 1.0, "1"])
def test_seal_request_timestamps_out_of_range(timestamp: Any) -> None:
    creds = vpseal.Credentials(AGENT, KEY)
    with pytest.raises(ValueError, match="timestamp_ms"):
        vpseal.seal_request(creds, {"a": 1}, timestamp_ms=timestamp)


@pytest.mark.parametrize(("nonce", "ok"), [("0" * 32, True), ("0" * 31, False), ("0" * 33, False),
                                           ("A" * 32, False), (None, True), (123, False),
                                           (b"0" * 32, False)])  # fmt: skip
def test_seal_request_nonces(nonce: Any, ok: bool) -> None:
    creds = vpseal.Credentials(AGENT, KEY)
    if ok:
        vpseal.seal_request(creds, {"a": 1}, nonce=nonce)
    else:
        with pytest.raises(ValueError, match="nonce"):
            vpseal.seal_request(creds, {"a": 1}, nonce=nonce)


@pytest.mark.parametrize(("iv", "ok"), [(bytes(12), True), (bytes(11), False), (bytes(13), False),
                                        (bytearray(12), False)])  # fmt: skip
def test_seal_request_ivs(iv: Any, ok: bool) -> None:
    creds = vpseal.Credentials(AGENT, KEY)
    if ok:
        vpseal.seal_request(creds, {"a": 1}, iv=iv)
    else:
        with pytest.raises(ValueError, match="iv"):
            vpseal.seal_request(creds, {"a": 1}, iv=iv)


@pytest.mark.parametrize("many", [False, True], ids=["open_request", "open_many"])
@pytest.mark.parametrize("guard", [None, object(), "ReplayGuard()"])
def test_a_guard_is_required(many: bool, guard: Any) -> None:
    sealed = _sealed()
    creds = vpseal.Credentials(AGENT, KEY)
    with pytest.raises(TypeError, match=r"guard must be a vpseal\.ReplayGuard"):
        if many:
            vpseal.open_many(creds, [sealed], guard=guard, now_ms=NOW)
        else:
            vpseal.open_request(creds, sealed.headers, sealed.body, guard=guard, now_ms=NOW)


def test_a_replay_guard_subclass_is_a_guard() -> None:
    class Guard(vpseal.ReplayGuard):
        pass

    sealed = _sealed()
    creds = vpseal.Credentials(AGENT, KEY)
    opened = vpseal.open_request(creds, sealed.headers, sealed.body, guard=Guard(), now_ms=NOW)
    assert opened.payload["transId"] == "t"


@pytest.mark.parametrize("request_", [42, None, (1, 2, 3), ("headers",)])
def test_open_many_answers_a_malformed_item_in_its_slot(request_: Any) -> None:
    sealed = _sealed()
    creds = vpseal.Credentials(AGENT, KEY)
    results = vpseal.open_many(creds, [request_, sealed], guard=vpseal.ReplayGuard(), now_ms=NOW)
    assert isinstance(results[0], RequestFormatError)
    assert "request must be (headers, body) or SealedRequest" in str(results[0])
    assert not isinstance(results[1], Exception)


@pytest.mark.parametrize("many", [False, True], ids=["open_request", "open_many"])
def test_a_compact_payload_is_parsed_by_the_scanner_alone(
    monkeypatch: pytest.MonkeyPatch, many: bool
) -> None:
    """The decrypted payload is read by the JSON scanner first; the full parser only sees what
    the scanner could not read (e.g. trailing whitespace)."""
    calls: list[bytes] = []
    real = envelope_module._json.loads

    def loads(data: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(envelope_module._json, "loads", loads)
    sealed = _sealed()
    assert _open(dict(sealed.headers), sealed.body, 1 << 20, many).payload["transId"] == "t"
    assert calls == []
    creds = vpseal.Credentials(AGENT, KEY)
    spaced = vpseal.seal_request(creds, b'{"transId": "s"} ', timestamp_ms=NOW)
    assert _open(dict(spaced.headers), spaced.body, 1 << 20, many).payload == {"transId": "s"}
    assert calls == [b'{"transId": "s"} ']


def test_seal_requests_fixed_values_are_keyword_only() -> None:
    creds = vpseal.Credentials(AGENT, KEY)
    with pytest.raises(TypeError):
        vpseal.seal_request(creds, {"a": 1}, NOW)  # type: ignore[misc]
