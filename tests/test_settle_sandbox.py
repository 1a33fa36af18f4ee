"""The cash-out settle transitions end to end: through the sandbox (faults, or a transaction
planted in its ledger) and, where the sandbox cannot produce the answer (unreadable or foreign
query answers), through a mock transport. Each asserts the outcome and the ledger.

The same transitions, one step at a time: test_settle_transitions.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

import vpseal
from vpseal.api_errors import ResponseFormatError
from vpseal.sandbox import FaultRule, Sandbox
from vpseal.sandbox.ledger import LedgerTransaction, _insert, _now_ms

pytest_plugins = ["_sandbox_helpers"]

MakeSandbox = Callable[..., Sandbox]
CASHOUT = "/v2/members/cashout"
QUERY = "/v2/members/check/transactions"
FAST: dict[str, Any] = {"timeout": 1.0, "max_retries": 2, "backoff_base": 0.0, "backoff_max": 0.0}


def _tx(amount: Any, trans_id: str = "T", username: str = "u") -> dict[str, Any]:
    return {
        "agent": "a", "transId": trans_id, "transactionTime": "2026-01-01T00:00:00.000Z",
        "amount": amount, "username": username,
    }  # fmt: skip


def _client(sandbox: Sandbox, **options: Any) -> vpseal.Client:
    return vpseal.Client(**{**sandbox.client_kwargs(), **FAST, **options})


def _rows(sandbox: Sandbox, username: str) -> list[tuple[str, str, int]]:
    """The member's ledger rows but the balance adjustments: (transId, kind, micro-units)."""
    return [(t.trans_id, t.kind, t.amount) for t in sandbox.transactions(username)
            if t.kind != "adjust"]  # fmt: skip


def _plant(sandbox: Sandbox, username: str, trans_id: str, micros: int) -> None:
    """A transaction under trans_id in the sandbox's ledger (amount in micro-units)."""
    ledger = sandbox.ledger
    with ledger._transaction() as conn:
        tx = LedgerTransaction(
            sandbox.config.agent_id, trans_id, username, "deposit" if micros >= 0 else "cashout",
            micros, 0, _now_ms(),
        )  # fmt: skip
        _insert(conn, tx)


@pytest.mark.parametrize(("status", "uncertain"), [(499, False), (500, True), (599, True)])
def test_http_status_boundary_on_the_cash_out(
    sandbox: Sandbox, status: int, uncertain: bool
) -> None:
    """5xx (500 and 599 included) may come after the server applied the cash-out: settled
    through the query; 499 is a refusal before it was applied: the error, nothing booked."""
    sandbox.set_member("s", "1.5")
    sandbox.add_fault(FaultRule("http_error", status=status))
    with _client(sandbox) as c:
        if uncertain:
            with pytest.raises(vpseal.OutcomeUnknown):
                c.cashout("s", "H-1")
        else:
            with pytest.raises(ResponseFormatError) as info:
                c.cashout("s", "H-1")
            assert info.value.http_status == status
    stats = sandbox.stats()
    if uncertain:  # re-sent to the end, then the query found nothing (each attempt refused)
        assert (stats["requests " + CASHOUT], stats["requests " + QUERY]) == (3, 1)
    else:
        assert (stats["requests " + CASHOUT], stats.get("requests " + QUERY, 0)) == (1, 0)
    assert _rows(sandbox, "s") == [] and sandbox.balance("s") == Decimal("1.5")


@pytest.mark.parametrize("status", [500, 599])
def test_http_5xx_after_commit_is_settled_to_the_withdrawal(sandbox: Sandbox, status: int) -> None:
    sandbox.set_member("t", "0.000001")
    sandbox.add_fault(FaultRule("http_error", phase="after", status=status))
    with _client(sandbox, max_retries=0) as c:
        result = c.cashout("t", "H-2")
    assert (result.amount, result.settled_by_query) == (Decimal("0.000001"), True)
    assert _rows(sandbox, "t") == [("H-2", "cashout", -1)]
    assert sandbox.balance("t") == 0


def test_query_finds_nothing_while_uncertain_re_sends_and_the_re_send_applies(
    sandbox: Sandbox,
) -> None:
    sandbox.set_member("n", 4)
    sandbox.add_fault(FaultRule("code", phase="before", code=7, count=1))  # uncertain, not applied
    with _client(sandbox, max_retries=1) as c:
        result = c.cashout("n", "N-1")
    stats = sandbox.stats()
    assert (stats["requests " + CASHOUT], stats["requests " + QUERY]) == (2, 1)
    assert (result.amount, result.settled_by_query, result.attempts) == (Decimal(4), False, 2)
    assert _rows(sandbox, "n") == [("N-1", "cashout", -4_000_000)]


def test_query_answered_83_renews_the_token_and_settles(sandbox: Sandbox) -> None:
    sandbox.set_member("q", "2.000002")
    sandbox.add_fault(FaultRule("drop", phase="after"))
    sandbox.add_fault(FaultRule("code", phase="before", code=83, count=1, paths=(QUERY,)))
    with _client(sandbox) as c:
        result = c.cashout("q", "Q-83")
    stats = sandbox.stats()
    assert stats["requests " + QUERY] == 2 and stats["requests /v2/auth"] == 2
    assert (result.amount, result.settled_by_query) == (Decimal("2.000002"), True)
    assert _rows(sandbox, "q") == [("Q-83", "cashout", -2_000_002)]


def test_query_answered_83_twice_is_unknown_and_the_money_moved_once(sandbox: Sandbox) -> None:
    sandbox.set_member("r", 3)
    sandbox.add_fault(FaultRule("drop", phase="after"))
    sandbox.add_fault(FaultRule("code", phase="before", code=83, paths=(QUERY,)))
    with _client(sandbox) as c, pytest.raises(vpseal.OutcomeUnknown) as info:
        c.cashout("r", "Q-83b")
    assert "code 83" in str(info.value)
    assert _rows(sandbox, "r") == [("Q-83b", "cashout", -3_000_000)]


@pytest.mark.parametrize("micros", [0, 1_500_000], ids=["zero", "deposit"])
def test_code_3_with_a_zero_or_deposit_amount_under_the_trans_id_is_transaction_exists(
    sandbox: Sandbox, micros: int
) -> None:
    sandbox.set_member("z", 9)
    _plant(sandbox, "z", "Z-1", micros)
    with _client(sandbox) as c, pytest.raises(vpseal.TransactionExists):
        c.cashout("z", "Z-1")
    assert sandbox.balance("z") == 9
    assert _rows(sandbox, "z") == [("Z-1", "deposit", micros)]


def test_uncertain_then_a_zero_amount_under_the_trans_id_is_unknown(sandbox: Sandbox) -> None:
    """The cash-out was dropped before it reached the ledger, and meanwhile a zero-amount row
    holds the transId: not a withdrawal to report, but not a refusal either."""
    sandbox.set_member("zz", 9)
    _plant(sandbox, "zz", "Z-2", 0)
    sandbox.add_fault(FaultRule("drop", phase="before"))
    with _client(sandbox, max_retries=0) as c, pytest.raises(vpseal.OutcomeUnknown) as info:
        c.cashout("zz", "Z-2")
    assert "deposit" in str(info.value) and sandbox.balance("zz") == 9


def test_code_3_with_a_fractional_withdrawal_under_the_trans_id_is_that_result(
    make_sandbox: MakeSandbox,
) -> None:
    """A repeat of an earlier call: the row under the transId is this member's withdrawal of
    0.000001 (one micro-unit); the result reports exactly that, the balance is untouched."""
    sandbox = make_sandbox(repeat="code-3", members={"f": 5})
    _plant(sandbox, "f", "F-1", -1)
    with _client(sandbox) as c:
        result = c.cashout("f", "F-1")
    assert (result.amount, result.balance, result.settled_by_query) == (
        Decimal("0.000001"), Decimal(0), True,
    )  # fmt: skip
    assert sandbox.balance("f") == 5 and _rows(sandbox, "f") == [("F-1", "cashout", -1)]


@pytest.mark.parametrize("code", [2, 19])
def test_ledger_verdict_after_an_uncertain_attempt_stands(sandbox: Sandbox, code: int) -> None:
    sandbox.set_member("v", 0 if code == 2 else 1, blocked=code == 19)
    sandbox.add_fault(FaultRule("drop", phase="before", count=1))
    with _client(sandbox) as c, pytest.raises(vpseal.APIError) as info:
        c.cashout("v", "V-1")
    assert info.value.code == code
    stats = sandbox.stats()
    assert (stats["requests " + CASHOUT], stats["requests " + QUERY]) == (2, 1)
    assert _rows(sandbox, "v") == []


# ------------------------------------------------------------------------------ mock transport


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> vpseal.Client:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return vpseal.Client(
        "http://vp.test", agent_id="a", api_key="00" * 32, secret="s", http_client=http,
        max_retries=0, backoff_base=0.0,
    )  # fmt: skip


def _body(code: int, data: Any = None) -> httpx.Response:
    doc: dict[str, Any] = {"code": code, "message": "m", "logUUID": "u"}
    if data is not None:
        doc["data"] = data
    return httpx.Response(200, content=json.dumps(doc).encode())


@pytest.fixture
def calls() -> Iterator[list[str]]:
    yield []


@pytest.mark.parametrize(
    ("query_answer", "why"),
    [
        (httpx.Response(200, content=b"<html/>"), "transaction query failed"),
        (_body(0, {"agent": "a"}), "unreadable"),
        (_body(0, {**_tx(-1, trans_id="M-9")}), "another transaction"),
        (_body(0, {**_tx(-1, trans_id="M-1", username="x")}), "another transaction"),
    ],
    ids=["not-envelope", "fields-missing", "other-trans-id", "other-member"],
)
def test_code_0_unreadable_then_a_bad_query_answer_is_unknown(
    calls: list[str], query_answer: httpx.Response, why: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/v2/auth":
            return _body(0, {"accessToken": "t0k", "expiresIn": 3600, "tokenType": "Bearer"})
        if request.url.path == CASHOUT:
            return _body(0, {"amount": "1", "balance": 0})  # amount is a string: unreadable
        return query_answer

    with _mock(handler) as c, pytest.raises(vpseal.OutcomeUnknown) as info:
        c.cashout("u", "M-1")
    assert why in str(info.value) and info.value.trans_id == "M-1"
    assert calls.count(CASHOUT) == 1 and calls.count(QUERY) == 1
