"""Amounts in answers reach the client's results only as bounded, exact Decimals (issue 8,
item 4): a hostile number is a ResponseFormatError, never decimal.Overflow or a giant string,
and a cash-out is never reported from an answer that does not prove it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import vpseal

KWARGS: dict[str, Any] = {
    "agent_id": "agent", "api_key": "11" * 32, "secret": "s", "timeout": 1.0,
    "max_retries": 1, "backoff_base": 0.0, "backoff_max": 0.0,
}  # fmt: skip
TOKEN = {"accessToken": "tok", "expiresIn": 3600}


def _client(answer: Callable[[str], httpx.Response]) -> vpseal.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/auth":
            return _ok(TOKEN)
        return answer(request.url.path)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    return vpseal.Client("http://vp.test", **KWARGS, http_client=http)


def _ok(data: dict[str, Any]) -> httpx.Response:
    body = {"code": 0, "message": "Success", "data": data, "logUUID": "l-1"}
    return httpx.Response(200, content=json.dumps(body).encode())


def _raw_ok(data: str) -> httpx.Response:
    body = '{"code":0,"message":"Success","logUUID":"l-2","data":' + data + "}"
    return httpx.Response(200, content=body.encode())


def _tx(amount: str) -> httpx.Response:
    return _raw_ok(
        '{"agent":"agent","transId":"T-1","transactionTime":"2025-01-29T10:00:00.000Z",'
        f'"amount":{amount},"username":"u"}}'
    )


@pytest.mark.parametrize("amount", ["-1e999999999", "1e99999999", "-123.4567891", "1e20"])
def test_a_hostile_amount_in_the_settling_query_is_an_unknown_outcome(amount: str) -> None:
    def answer(path: str) -> httpx.Response:
        if path.endswith("/cashout"):
            raise httpx.ReadTimeout("lost")  # may have been applied: settle by query
        return _tx(amount)

    with _client(answer) as client, pytest.raises(vpseal.OutcomeUnknown) as info:
        client.cashout("u", "T-1")
    assert info.value.trans_id == "T-1"
    assert "unreadable transaction query answer" in str(info.value)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("amount", "problem"),
    [
        ("-1e999999999", r"data\.amount is out of range"),
        ("NaN", "not JSON"),  # the decoder refuses the constant itself
        ('"12.5"', r"data\.amount"),
        ("true", r"data\.amount"),
        ("null", r"data\.amount is missing"),
    ],
)
def test_check_transaction_refuses_a_hostile_amount(amount: str, problem: str) -> None:
    with _client(lambda path: _tx(amount)) as client, pytest.raises(
        vpseal.ResponseFormatError, match=problem
    ) as info:
        client.check_transaction("u", "T-1")
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    "data",
    ['{"amount":-5,"balance":0}', '{"amount":5,"balance":1}', '{"amount":1e999,"balance":0}'],
)
def test_a_code_0_cashout_that_proves_nothing_is_settled_by_the_query(data: str) -> None:
    seen: list[str] = []

    def answer(path: str) -> httpx.Response:
        seen.append(path)
        return _raw_ok(data) if path.endswith("/cashout") else _tx("-5")

    with _client(answer) as client:
        result = client.cashout("u", "T-1")
    assert seen == ["/v2/members/cashout", "/v2/members/check/transactions"]
    assert result.settled_by_query and str(result.amount) == "5"


def test_amounts_come_back_exact() -> None:
    with _client(lambda path: _raw_ok('{"amount":2323.582,"balance":0}')) as client:
        result = client.cashout("u", "T-1")
    assert str(result.amount) == "2323.582" and str(result.balance) == "0"
