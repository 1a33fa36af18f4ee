"""Client configuration and answer validation, at their edges (the client core, no I/O).

Bad base URLs, timeouts and retry settings; the backoff formula at its bounds; answers missing
fields or carrying the wrong types; HTTP statuses at the 4xx/5xx boundaries; tokens and
secrets never in a repr.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

import vpseal
from vpseal import _client_core as core
from vpseal._client_core import (
    Answer,
    Envelope,
    NoAnswer,
    RetryBudget,
    RetryPolicy,
    Send,
    Token,
    TokenCache,
)
from vpseal.api_errors import RateLimited, ResponseFormatError, TransportError
from vpseal.errors import ConfigError

KEY = "00" * 32
ENV = {
    "VPSEAL_BASE_URL": "https://env.test/",
    "VPSEAL_AGENT_ID": " agent ",
    "VPSEAL_API_KEY": KEY,
    "VPSEAL_SECRET": "env-secret",
}


def _settings(base_url: str | None = "https://vp.test", environ: Any = None) -> core.Settings:
    return core.resolve_settings(
        base_url, "a", KEY, "s", "transfer", RetryPolicy(), {} if environ is None else environ
    )


# ------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("https://vp.test", "https://vp.test"),
        ("http://vp.test/", "http://vp.test"),
        ("  https://vp.test/api//  ", "https://vp.test/api"),
        ("https://vp.test:8443", "https://vp.test:8443"),
        ("https://[::1]:1", "https://[::1]:1"),
    ],
)
def test_good_base_urls(url: str, want: str) -> None:
    assert _settings(url).base_url == want


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("vp.test", "must start with"),
        ("ftp://vp.test", "must start with"),
        ("HTTPS://vp.test", "must start with"),
        ("https://", "must start with"),  # "https:" once the slashes go
        ("https:///path", "not a valid URL"),
        ("https://vp.test:99999", "not a valid URL"),
        ("https://vp.test:port", "not a valid URL"),
        ("https://vp .test", "not a valid URL"),
        ("https://vp.test/a\tb", "not a valid URL"),
        ("https://vp.test/?x=1", "not a valid URL"),
        ("https://vp.test/#top", "not a valid URL"),
        ("https://[::1", "not a valid URL"),
        ("", "is not set"),
        ("   ", "is not set"),
    ],
)
def test_bad_base_urls(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        _settings(url)
    assert "VPSEAL_BASE_URL" in str(info.value)


def test_settings_from_the_environment_and_arguments_first() -> None:
    s = core.resolve_settings(None, None, None, None, "pipe", RetryPolicy(), ENV)
    assert (s.base_url, s.credentials.agent_id, s.secret) == (
        "https://env.test",
        "agent",
        "env-secret",
    )
    assert s.credentials.scheme == "pipe"
    s = core.resolve_settings("http://arg.test", "x", KEY, "sEcReT", "transfer", RetryPolicy(), ENV)
    assert (s.base_url, s.credentials.agent_id, s.secret) == ("http://arg.test", "x", "sEcReT")
    assert "sEcReT" not in repr(s) and KEY not in repr(s)


@pytest.mark.parametrize("missing", ["VPSEAL_AGENT_ID", "VPSEAL_API_KEY", "VPSEAL_SECRET"])
@pytest.mark.parametrize("blank", [None, "", " \t"])
def test_a_missing_setting_is_named(missing: str, blank: str | None) -> None:
    env = dict(ENV)
    if blank is None:
        del env[missing]
    else:
        env[missing] = blank
    with pytest.raises(ConfigError, match=missing):
        core.resolve_settings(None, None, None, None, "transfer", RetryPolicy(), env)


def test_a_malformed_api_key_fails_before_any_request() -> None:
    with pytest.raises(ValueError):
        core.resolve_settings("https://vp.test", "a", "zz", "s", "transfer", RetryPolicy(), {})


@pytest.mark.parametrize(("timeout", "want"), [(None, None), (1, 1.0), (0.001, 0.001), (1e9, 1e9)])
def test_good_timeouts(timeout: Any, want: float | None) -> None:
    assert core.resolve_timeout(timeout) == want


@pytest.mark.parametrize(
    "timeout", [0, 0.0, -1, -0.5, True, False, "5", float("nan"), float("inf"), [1]]
)
def test_bad_timeouts(timeout: Any) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        core.resolve_timeout(timeout)


@pytest.mark.parametrize("max_retries", [0, 1, 100])
def test_retry_counts_in_range(max_retries: int) -> None:
    assert RetryPolicy(max_retries=max_retries).max_retries == max_retries


@pytest.mark.parametrize(
    ("max_retries", "why"),
    [(-1, "between"), (101, "between"), (True, "an int"), (1.0, "an int"), ("3", "an int")],
)
def test_retry_counts_out_of_range(max_retries: Any, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        RetryPolicy(max_retries=max_retries)


@pytest.mark.parametrize("name", ["backoff_base", "backoff_max", "retry_after_max"])
@pytest.mark.parametrize("value", [0, 0.0, 3600, 3600.0, 1])
def test_backoff_settings_in_range(name: str, value: float) -> None:
    assert getattr(RetryPolicy(**{name: value}), name) == value


@pytest.mark.parametrize("name", ["backoff_base", "backoff_max", "retry_after_max"])
@pytest.mark.parametrize(
    ("value", "why"),
    [(-0.001, "between"), (3600.001, "between"), (float("nan"), "between"),
     (float("inf"), "between"), (True, "number"), ("1", "number"), (None, "number")],
)  # fmt: skip
def test_backoff_settings_out_of_range(name: str, value: Any, why: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be .*{why}"):
        RetryPolicy(**{name: value})


def test_client_configuration_errors_surface_at_construction() -> None:
    base = {"agent_id": "a", "api_key": KEY, "secret": "s"}
    for bad in [{"max_retries": -1}, {"backoff_base": -1}, {"timeout": 0},
                {"max_response_bytes": 1023}, {"max_response_bytes": (1 << 30) + 1},
                {"max_response_bytes": True}, {"max_connections": 0},
                {"max_connections": 10_001}, {"retry_budget": -1}, {"http": "curl"}]:  # fmt: skip
        with pytest.raises(ConfigError):
            vpseal.Client("https://vp.test", **base, **bad).close()
    for good in [{"max_response_bytes": 1024}, {"max_response_bytes": 1 << 30},
                 {"max_connections": 1}, {"max_connections": 10_000}, {"retry_budget": 0},
                 {"retry_budget": None}, {"max_retries": 0}, {"timeout": None}]:  # fmt: skip
        vpseal.Client("https://vp.test", **base, **good).close()


# ------------------------------------------------------------------------------ backoff


def test_backoff_doubles_from_the_base_up_to_the_max() -> None:
    p = RetryPolicy(backoff_base=0.5, backoff_max=3.0)
    assert [p.delay(n, rand=lambda: 1.0) for n in range(0, 6)] == [0.5, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert [p.delay(n, rand=lambda: 0.0) for n in range(1, 5)] == [0.25, 0.5, 1.0, 1.5]
    assert p.delay(2, rand=lambda: 0.5) == 0.75
    assert p.delay(10_000, rand=lambda: 1.0) == 3.0  # no overflow for absurd retry numbers


def test_retry_after_is_a_minimum_capped_by_retry_after_max() -> None:
    p = RetryPolicy(backoff_base=1.0, backoff_max=8.0, retry_after_max=30.0)
    assert p.delay(1, 0.1, rand=lambda: 1.0) == 1.0
    assert p.delay(1, 7.0, rand=lambda: 1.0) == 7.0
    assert p.delay(1, 30.0, rand=lambda: 1.0) == 30.0
    assert p.delay(1, 3600.0, rand=lambda: 1.0) == 30.0
    assert p.delay(1, 0.0, rand=lambda: 0.0) == 0.5


def test_retry_budget_spends_and_earns_within_capacity() -> None:
    budget = RetryBudget(capacity=10, cost=5)
    assert budget.spend() and budget.spend() and not budget.spend()
    assert repr(budget) == "RetryBudget(0/10)"
    for _ in range(12):
        budget.earn()
    assert repr(budget) == "RetryBudget(10/10)"
    budget = RetryBudget(capacity=5, cost=5)
    assert budget.spend() and not budget.spend()  # exactly the cost left: spendable once
    for bad in (-1, True, 1.5, None):
        with pytest.raises(ConfigError):
            RetryBudget(capacity=bad)  # type: ignore[arg-type]
    assert all(core.UNLIMITED_RETRIES.spend() for _ in range(100))


# ------------------------------------------------------------------------------ headers


def _http_date(delta: float) -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=delta), usegmt=True)


@pytest.mark.parametrize(
    ("value", "want"),
    [(None, None), ("", None), ("0", 0.0), (" 7 ", 7.0), ("999999999", 999999999.0),
     ("1234567890", None), ("-1", None), ("1.5", None), ("soon", None),
     ("Wed, 21 Oct 2015 07:28:00", None), (_http_date(-3600), 0.0)],
)  # fmt: skip
def test_retry_after_header(value: str | None, want: float | None) -> None:
    assert core.retry_after_seconds(value) == want


def test_retry_after_as_a_future_date() -> None:
    got = core.retry_after_seconds(_http_date(120))
    assert got is not None and 115 < got <= 120


def test_clock_skew_header() -> None:
    assert core.clock_skew(None) is None and core.clock_skew("") is None
    assert core.clock_skew("garbage") is None
    assert core.clock_skew("Wed, 21 Oct 2015 07:28:00") is None  # no zone
    ahead = core.clock_skew(_http_date(600))
    assert ahead is not None and 595 < ahead <= 600
    behind = core.clock_skew(_http_date(-600))
    assert behind is not None and -605 < behind <= -599


@pytest.mark.parametrize(
    ("skew", "note"),
    [(None, None), (300.0, None), (-300.0, None), (301.0, "behind"), (-301.0, "ahead of")],
)
def test_code_83_names_a_clock_beyond_the_window(skew: float | None, note: str | None) -> None:
    error = core.envelope_error(Envelope(83, "auth", None, "L", 200, skew))
    assert isinstance(error, vpseal.AuthenticationFailed) and error.http_status == 200
    if note is None:
        assert "clock" not in str(error)
    else:
        assert f"{abs(skew):.0f} s {note} the server" in str(error)  # type: ignore[arg-type]
        assert error.args == (error.message,)


# ------------------------------------------------------------------------------ answers


def _doc(**fields: Any) -> bytes:
    doc: dict[str, Any] = {"code": 0, "message": "m", "logUUID": "L"}
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "is not JSON"),
        (b"\xff", "is not JSON"),
        (b"{", "is not JSON"),
        (b'{"code": NaN, "message": "m", "logUUID": "L"}', "is not JSON"),
        (b'{"code": 0, "code": 83, "message": "m", "logUUID": "L"}', "duplicate key"),
        (b'{"code": 0, "message": "m", "logUUID": "L", "data": {"a": 1e99999999999999999999}}',
         "is not JSON"),
        (b"[" * 100_000, "is not JSON"),
        (b"[]", "not an object"),
        (b'"x"', "not an object"),
        (_doc(code=...), "no integer 'code'"),
        (_doc(code=True), "no integer 'code'"),
        (_doc(code=0.0), "no integer 'code'"),
        (_doc(code="0"), "no integer 'code'"),
        (_doc(message=...), "no string 'message'"),
        (_doc(message=None), "no string 'message'"),
        (_doc(logUUID=...), "no string 'logUUID'"),
        (_doc(logUUID=1), "no string 'logUUID'"),
        (_doc(data=[]), "'data' is not an object"),
        (_doc(data="x"), "'data' is not an object"),
    ],
)  # fmt: skip
def test_answers_that_are_not_the_envelope(content: bytes, why: str) -> None:
    with pytest.raises(ResponseFormatError, match=why) as info:
        core.parse_envelope(201, content)
    assert info.value.http_status == 201 and str(info.value).startswith("HTTP 201: ")


def test_the_envelope_with_and_without_data() -> None:
    assert core.parse_envelope(200, _doc()) == Envelope(0, "m", None, "L", 200)
    assert core.parse_envelope(200, _doc(data=None)).data is None
    env = core.parse_envelope(200, _doc(code=7, data={"amount": 1.10}))
    assert env.code == 7 and env.data == {"amount": Decimal("1.10")}


@pytest.mark.parametrize(
    ("status", "maybe", "retryable"),
    [(500, True, True), (599, True, True), (502, True, True), (600, True, True)],
)
def test_5xx_is_no_answer_that_may_have_been_applied(
    status: int, maybe: bool, retryable: bool
) -> None:
    outcome = core.classify_response(
        status, _doc(), lambda name: "3" if name == "retry-after" else None
    )
    assert isinstance(outcome, NoAnswer) and isinstance(outcome.error, TransportError)
    assert (outcome.maybe_processed, outcome.retryable, outcome.retry_after) == (
        maybe,
        retryable,
        3.0,
    )
    assert outcome.error.http_status == status


def test_499_and_200_with_the_envelope_are_answers() -> None:
    for status in (499, 200, 400):
        outcome = core.classify_response(status, _doc(code=11))
        assert isinstance(outcome, Answer) and outcome.envelope.http_status == status


def test_429_is_refused_before_it_was_applied() -> None:
    outcome = core.classify_response(429, b"", lambda name: "4" if name == "retry-after" else None)
    assert isinstance(outcome, NoAnswer) and isinstance(outcome.error, RateLimited)
    assert (outcome.maybe_processed, outcome.retryable, outcome.retry_after) == (False, True, 4.0)
    assert outcome.error.retry_after == 4.0
    outcome = core.classify_response(429, b"")
    assert isinstance(outcome, NoAnswer) and outcome.retry_after is None


@pytest.mark.parametrize(
    ("status", "maybe", "hint"),
    [(200, True, False), (399, True, False), (400, False, False), (404, False, True),
     (405, False, True), (406, False, False), (428, False, False), (430, False, False)],
)  # fmt: skip
def test_a_body_that_is_not_the_envelope(status: int, maybe: bool, hint: bool) -> None:
    outcome = core.classify_response(status, b"<html/>")
    assert isinstance(outcome, NoAnswer) and isinstance(outcome.error, ResponseFormatError)
    assert (outcome.maybe_processed, outcome.retryable) == (maybe, False)
    assert ("check the base URL" in str(outcome.error)) is hint
    assert outcome.error.http_status == status


def test_only_code_83_reads_the_date_header() -> None:
    asked: list[str] = []

    def header(name: str) -> str | None:
        asked.append(name)
        return _http_date(900)

    outcome = core.classify_response(200, _doc(code=20), header)
    assert isinstance(outcome, Answer) and outcome.envelope.clock_skew is None and asked == []
    outcome = core.classify_response(200, _doc(code=83), header)
    assert isinstance(outcome, Answer) and asked == ["date"]
    assert outcome.envelope.clock_skew is not None and outcome.envelope.clock_skew > 890


@pytest.mark.parametrize(
    ("status", "maybe"), [(200, True), (399, True), (400, False), (500, False)]
)
def test_too_large(status: int, maybe: bool) -> None:
    outcome = core.too_large(status, 1024)
    assert (outcome.maybe_processed, outcome.retryable) == (maybe, False)
    assert "larger than 1024 bytes" in str(outcome.error)
    assert outcome.error.http_status == status  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ data


def _env(data: Any) -> Envelope:
    return Envelope(0, "ok", data, "L", 200)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (None, "no 'data'"),
        ({}, "accessToken is not a string"),
        ({"accessToken": 5, "expiresIn": 1}, "accessToken is not a string"),
        ({"accessToken": "", "expiresIn": 1}, "not a usable token"),
        ({"accessToken": "a b", "expiresIn": 1}, "not a usable token"),
        ({"accessToken": "a\x7f", "expiresIn": 1}, "not a usable token"),
        ({"accessToken": "a\n", "expiresIn": 1}, "not a usable token"),
        ({"accessToken": "tökén", "expiresIn": 1}, "not a usable token"),
        ({"accessToken": "t"}, "expiresIn"),
        ({"accessToken": "t", "expiresIn": "60"}, "expiresIn"),
        ({"accessToken": "t", "expiresIn": True}, "expiresIn"),
        ({"accessToken": "t", "expiresIn": 1.5}, "expiresIn"),  # a float: not from our decoder
        ({"accessToken": "t", "expiresIn": -1}, "expiresIn"),
        ({"accessToken": "t", "expiresIn": Decimal("-0.1")}, "expiresIn"),
        ({"accessToken": "t", "expiresIn": 366 * 86400 + 1}, "expiresIn"),
    ],
)
def test_token_answers_that_are_refused(data: Any, why: str) -> None:
    with pytest.raises(ResponseFormatError, match=why):
        core.parse_token(_env(data))


@pytest.mark.parametrize(
    ("expires", "want"), [(0, 0.0), (366 * 86400, 366 * 86400.0), (Decimal("0.5"), 0.5)]
)
def test_token_answers_at_the_bounds(expires: Any, want: float) -> None:
    token = core.parse_token(_env({"accessToken": "~!t0k", "expiresIn": expires}))
    assert token == Token("~!t0k", want)


def test_a_token_is_never_in_a_repr() -> None:
    secret = "SECRET-TOKEN-VALUE"
    token = Token(secret, 60.0)
    cache = TokenCache()
    cache.store(token)
    settings = _settings()
    prepared = core.prepare(settings, core.CASHOUT_PATH, {"username": "u"}, secret)
    assert prepared.headers["Authorization"] == "Bearer " + secret
    send = Send(core.AUTH_PATH, core.auth_payload(settings), False)
    shown = [repr(token), str(token), repr(cache), repr(prepared), repr(send), repr(settings),
             repr((token, prepared)), f"{token!r}"]  # fmt: skip
    for text in shown:
        assert secret not in text and "s'" not in text.replace("s',", "")
    assert "<hidden>" in repr(token) and "body=" in repr(prepared)
    client = vpseal.Client("https://vp.test", agent_id="a", api_key=KEY, secret="very-secret")
    try:
        client._tokens.store(token)
        assert secret not in repr(client) and "very-secret" not in repr(client)
        assert KEY not in repr(client)
    finally:
        client.close()


def test_the_token_cache_renews_ahead_of_expiry() -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    assert cache.get() is None and cache.generation == 0
    assert TokenCache.margin(3600) == 60.0 and TokenCache.margin(100) == 10.0
    assert TokenCache.margin(600) == 60.0
    assert cache.store(Token("t1", 100.0)) == ("t1", 1)
    now[0] = 1089.999
    assert cache.get() == ("t1", 1) and cache.get(stale=1) is None and cache.get(stale=0)
    assert cache.refused(1) == "t1" and cache.refused(0) is None and cache.refused(None) is None
    now[0] = 1090.0  # expires_in - margin: renew from here
    assert cache.get() is None
    cache.clear()
    assert cache.get() is None and cache.generation == 1 and "cached=False" in repr(cache)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2026-02-03T06:18:06.963Z", "2026-02-03T06:18:06.963000+00:00"),
        ("2026-02-03T06:18:06.963z", "2026-02-03T06:18:06.963000+00:00"),
        (" 2026-02-03T06:18:06Z ", "2026-02-03T06:18:06+00:00"),
        ("2026-02-03T08:18:06+02:00", "2026-02-03T06:18:06+00:00"),
    ],
)
def test_transaction_times(text: str, want: str) -> None:
    assert core.parse_time(text).isoformat() == want


@pytest.mark.parametrize(
    ("text", "why"),
    [("2026-02-03T06:18:06", "no UTC offset"), ("yesterday", "not an ISO 8601"),
     ("", "not an ISO 8601"), ("Z", "not an ISO 8601")],
)  # fmt: skip
def test_transaction_times_refused(text: str, why: str) -> None:
    with pytest.raises(ResponseFormatError, match=why):
        core.parse_time(text)


@pytest.mark.parametrize(
    ("data", "why"),
    [({"amount": Decimal(-1), "balance": Decimal(0)}, "negative"),
     ({"amount": Decimal(1), "balance": Decimal("0.000001")}, "balance"),
     ({"amount": Decimal(1), "balance": Decimal("-0.000001")}, "balance"),
     ({"amount": "1", "balance": Decimal(0)}, "amount"),
     ({"amount": Decimal(1)}, "balance")],
)  # fmt: skip
def test_cashout_answers_refused(data: dict[str, Any], why: str) -> None:
    with pytest.raises(ResponseFormatError, match=why):
        core.parse_cashout(_env(data), "T", 1)


def test_cashout_answers_at_the_bounds() -> None:
    got = core.parse_cashout(_env({"amount": Decimal(0), "balance": Decimal("0.000")}), "T", 3)
    assert got == core.CashoutResult("T", Decimal(0), Decimal(0), "L", 3, False)


def test_member_payload_types() -> None:
    assert core.member_payload("u", "t") == {"username": "u", "transId": "t"}
    with pytest.raises(TypeError, match="username"):
        core.member_payload(1, "t")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="trans_id"):
        core.member_payload("u", 1)  # type: ignore[arg-type]
    tid = core.new_trans_id()
    assert len(tid) == 32 and int(tid, 16) >= 0 and tid != core.new_trans_id()


# ------------------------------------------------------------------------------ response size


def _mock(content: bytes, limit: int, status: int = 200) -> vpseal.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/auth":
            body = {"code": 0, "message": "m", "logUUID": "u",
                    "data": {"accessToken": "t0k", "expiresIn": 3600}}  # fmt: skip
            return httpx.Response(200, content=json.dumps(body).encode())
        return httpx.Response(status, content=content)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return vpseal.Client(
        "http://vp.test", agent_id="a", api_key=KEY, secret="s", http_client=http,
        max_retries=0, backoff_base=0.0, max_response_bytes=limit,
    )  # fmt: skip


def _padded_answer(size: int) -> bytes:
    data = {"agent": "a", "transId": "T", "transactionTime": "2026-01-01T00:00:00.000Z",
            "amount": -1, "username": "u"}  # fmt: skip
    body = json.dumps({"code": 0, "message": "", "logUUID": "L", "data": data})
    pad = size - len(body)
    assert pad >= 0
    return json.dumps({"code": 0, "message": " " * pad, "logUUID": "L", "data": data}).encode()


@pytest.mark.parametrize("limit", [1024, 4096])
def test_an_answer_of_exactly_max_response_bytes_is_read(limit: int) -> None:
    with _mock(_padded_answer(limit), limit) as c:
        tx = c.check_transaction("u", "T")
    assert tx.amount == Decimal(-1)


@pytest.mark.parametrize("limit", [1024, 4096])
def test_an_answer_one_byte_longer_is_refused_unread(limit: int) -> None:
    with _mock(_padded_answer(limit + 1), limit) as c, pytest.raises(ResponseFormatError) as info:
        c.check_transaction("u", "T")
    assert f"larger than {limit} bytes" in str(info.value)


# ------------------------------------------------------------------------------ TokenFlow


class _Store:
    """A token store that holds one token and always grants the lock."""

    def __init__(self, held: Any) -> None:
        self.held = held
        self.calls: list[str] = []

    def load(self, key: str) -> Any:
        self.calls.append("load")
        return self.held

    def save(self, key: str, token: Any) -> None:
        self.calls.append("save")
        self.held = token

    def discard(self, key: str, value: str) -> None:
        self.calls.append("discard")

    def try_lock(self, key: str, ttl: float) -> str | None:
        self.calls.append("lock")
        return "L"

    def unlock(self, key: str, lock_id: str) -> None:
        self.calls.append("unlock")


@pytest.mark.parametrize(
    ("now", "refused", "fetches"),
    [(1000.0, None, False), (1089.999, None, False), (1090.0, None, True),
     (1000.0, "stored", True), (1000.0, "other", False)],
)  # fmt: skip
def test_token_flow_uses_the_stored_token_until_its_renewal_time_unless_refused(
    monkeypatch: pytest.MonkeyPatch, now: float, refused: str | None, fetches: bool
) -> None:
    from vpseal.tokens import StoredToken

    monkeypatch.setattr(core.time, "time", lambda: now)
    store = _Store(StoredToken("stored", 1100.0, 100.0))  # renew from 1090
    flow = core.TokenFlow(_settings(), store, "k", refused, 5.0, 1.0)  # type: ignore[arg-type]
    step = flow.start()
    if fetches:
        assert isinstance(step, Send) and step.path == core.AUTH_PATH
    else:
        assert isinstance(step, core.Done) and step.value == Token("stored", 1100.0 - now)
        assert "lock" not in store.calls
    assert ("discard" in store.calls) is (refused is not None)


def test_a_clients_default_retry_budget_is_a_hundred() -> None:
    client = vpseal.Client("https://vp.test", agent_id="a", api_key=KEY, secret="s")
    try:
        assert repr(client._budget) == "RetryBudget(100/100)" == repr(RetryBudget())
    finally:
        client.close()
    client = vpseal.Client(
        "https://vp.test", agent_id="a", api_key=KEY, secret="s", retry_budget=None
    )
    try:
        assert client._budget is core.UNLIMITED_RETRIES
    finally:
        client.close()
