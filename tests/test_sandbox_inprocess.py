"""The sandbox without a socket: InProcessSandbox's httpx transports, sync and async.

The same API behaviour as over HTTP (tests/test_sandbox.py checks the server byte by byte);
here: that the transports carry it whole, that faults look to the client as the network's
would, and the example test a downstream SDK would write (shown in docs/sandbox.md).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

import vpseal
from vpseal.sandbox import FaultRule, InProcessSandbox, Sandbox

CASHOUT = "/v2/members/cashout"
QUERY = "/v2/members/check/transactions"
AUTH = "/v2/auth"
FAST: dict[str, Any] = {"timeout": 2.0, "max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05}


@pytest.fixture
def sb() -> Iterator[InProcessSandbox]:
    with InProcessSandbox(members={"alice": "10.5", "bob": "3"}) as sandbox:
        yield sandbox


def _cashouts(sandbox: Sandbox, username: str | None = None) -> list[str]:
    return [t.trans_id for t in sandbox.transactions(username) if t.kind == "cashout"]


# ------------------------------------------------------------------------------ sync


def test_cashout_then_query(sb: InProcessSandbox) -> None:
    with sb.client(**FAST) as client:
        result = client.cashout("alice", "T-1")
        tx = client.check_transaction("alice", "T-1")
    assert (result.amount, result.balance, result.attempts) == (Decimal("10.5"), Decimal(0), 1)
    assert (tx.trans_id, tx.amount, tx.username) == ("T-1", Decimal("-10.5"), "alice")
    assert sb.balance("alice") == 0 and _cashouts(sb) == ["T-1"]
    assert "connections" not in sb.stats() and sb.stats()["cashouts applied"] == 1


def test_duplicate_trans_id_answers_the_same_result(sb: InProcessSandbox) -> None:
    with sb.client(**FAST) as client:
        first = client.cashout("alice", "T-1")
        again = client.cashout("alice", "T-1")
        with pytest.raises(vpseal.TransactionExists):  # the same transId for another member
            client.cashout("bob", "T-1")
    assert (again.amount, again.balance) == (first.amount, first.balance)
    assert _cashouts(sb) == ["T-1"] and sb.balance("bob") == 3
    assert sb.stats()["cashouts repeated"] == 1


def test_duplicate_trans_id_with_code_3() -> None:
    with InProcessSandbox(repeat="code-3", members={"alice": 2}) as sb, sb.client(**FAST) as c:
        first = c.cashout("alice", "T-1")
        again = c.cashout("alice", "T-1")  # code 3: the client asks the query what happened
        assert (again.amount, again.settled_by_query) == (first.amount, True)
        assert sb.stats()["code 3"] == 1 and _cashouts(sb) == ["T-1"]


def test_api_errors_by_code(sb: InProcessSandbox) -> None:
    sb.set_member("zero", 0)
    with sb.client(**FAST) as client:
        with pytest.raises(vpseal.BalanceNotEnough):
            client.cashout("zero", "Z-1")
        with pytest.raises(vpseal.MemberNotFound):
            client.cashout("nobody", "N-1")
        with pytest.raises(vpseal.TransactionNotFound):
            client.check_transaction("alice", "never")
        with pytest.raises(vpseal.ParametersError):
            client.cashout("x" * 65, "P-1")


def test_auth_errors(sb: InProcessSandbox) -> None:
    with sb.client(**FAST, secret="wrong") as client, pytest.raises(vpseal.AuthenticationFailed):
        client.authenticate()
    with sb.client(**FAST, agent_id="stranger") as client, pytest.raises(vpseal.AgentNotFound):
        client.cashout("alice", "A-1")
    assert sb.balance("alice") == Decimal("10.5")
    assert sb.stats()["code 83"] == 1 and sb.stats()["code 10"] == 1


def test_revoked_token_is_renewed(sb: InProcessSandbox) -> None:
    with sb.client(**FAST) as client:
        client.authenticate()
        sb.revoke_tokens()
        assert client.cashout("bob", "R-1").amount == 3
    assert sb.stats()["requests " + AUTH] == 2 and sb.stats()["code 83"] == 1


def test_own_http_client_and_admin_endpoint(sb: InProcessSandbox) -> None:
    http = httpx.Client(transport=sb.transport(), base_url=sb.base_url)
    with vpseal.Client(**sb.client_kwargs(), http_client=http, **FAST) as client:
        client.cashout("bob", "H-1")
    member = http.get("/_admin/members/bob").json()
    cashouts = [t["transId"] for t in member["transactions"] if t["kind"] == "cashout"]
    assert member["balance"] == 0 and cashouts == ["H-1"]
    assert http.post("/_admin/members", json={"username": "carol", "balance": 7}).json()["ok"]
    assert sb.balance("carol") == 7
    assert http.post("/elsewhere", content=b"{}").status_code == 404
    assert http.get(CASHOUT).status_code == 405
    http.close()


def test_drop_after_commit_is_retried_to_the_same_result(sb: InProcessSandbox) -> None:
    rule = sb.add_fault(FaultRule("drop", phase="after", count=1))
    with sb.client(**FAST) as client:
        result = client.cashout("alice", "D-1")
    assert (result.amount, result.attempts) == (Decimal("10.5"), 2)
    assert rule.fired == 1 and _cashouts(sb) == ["D-1"]


def test_drop_is_the_servers_disconnect(sb: InProcessSandbox) -> None:
    sb.add_fault(FaultRule("drop", phase="before", paths=(AUTH,), count=1))
    with httpx.Client(transport=sb.transport(), base_url=sb.base_url) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            http.post(AUTH, content=b"{}")
        assert http.post(AUTH, content=b"{}").json()["code"] == 10  # unknown agent: no header


def test_drop_while_locked_answers_before_the_commit(sb: InProcessSandbox) -> None:
    sb.add_fault(FaultRule("drop", phase="locked", count=1))
    sb.add_fault(FaultRule("delay", phase="locked", seconds=0.5, count=1))
    patient = {**FAST, "max_retries": 8, "backoff_base": 0.05, "backoff_max": 0.1}
    with sb.client(**patient) as client:
        result = client.cashout("alice", "L-1")
    assert result.amount == Decimal("10.5") and result.attempts >= 2
    assert _cashouts(sb) == ["L-1"] and sb.stats().get("code 35", 0) >= 1


def test_delay_past_the_read_timeout(sb: InProcessSandbox) -> None:
    sb.add_fault(FaultRule("delay", phase="before", seconds=1.0, paths=(AUTH,), count=1))
    with httpx.Client(transport=sb.transport(), base_url=sb.base_url, timeout=0.1) as http:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            http.post(AUTH, content=b"{}")
        assert time.monotonic() - started < 0.9  # the client gave up; the request goes on
        assert sb.stats()["requests " + AUTH] == 1
    assert sb.wait_idle(5)


def test_http_error_fault_then_success(sb: InProcessSandbox) -> None:
    sb.add_fault(FaultRule("http_error", status=502, count=2))
    with sb.client(**FAST) as client:
        assert client.cashout("bob", "E-1").attempts == 3
    assert sb.stats()["fault http_error before"] == 2


def test_closed_sandbox_refuses_to_connect() -> None:
    sb = InProcessSandbox()
    transport = sb.transport()
    sb.close()
    sb.close()  # twice is fine
    assert sb.closed
    with httpx.Client(transport=transport) as http, pytest.raises(httpx.ConnectError):
        http.post("http://anywhere" + AUTH, content=b"{}")
    with pytest.raises(RuntimeError):
        sb.port  # noqa: B018
    with pytest.raises(RuntimeError):
        sb.serve_forever()


def test_threads_share_one_sandbox(sb: InProcessSandbox) -> None:
    for i in range(20):
        sb.set_member(f"m{i}", i + 1)
    with sb.client(**FAST) as client:
        threads = [
            threading.Thread(target=client.cashout, args=(f"m{i}", f"M-{i}")) for i in range(20)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(_cashouts(sb)) == sorted(f"M-{i}" for i in range(20))
    assert all(sb.balance(f"m{i}") == 0 for i in range(20))


# ------------------------------------------------------------------------------ async


async def test_async_cashout_query_and_errors(sb: InProcessSandbox) -> None:
    async with sb.async_client(**FAST) as client:
        result = await client.cashout("alice", "A-1")
        again = await client.cashout("alice", "A-1")
        tx = await client.check_transaction("alice", "A-1")
        with pytest.raises(vpseal.TransactionNotFound):
            await client.check_transaction("bob", "A-1")
    assert result.amount == again.amount == -tx.amount == Decimal("10.5")
    async with sb.async_client(**FAST, secret="wrong") as client:
        with pytest.raises(vpseal.AuthenticationFailed):
            await client.authenticate()


async def test_async_drop_fault_and_own_http_client(sb: InProcessSandbox) -> None:
    sb.add_fault(FaultRule("drop", phase="after", count=1))
    async with httpx.AsyncClient(transport=sb.async_transport()) as http:
        client = vpseal.AsyncClient(**sb.client_kwargs(), http_client=http, **FAST)
        result = await client.cashout("bob", "AD-1")
    assert (result.amount, result.attempts) == (Decimal(3), 2) and _cashouts(sb) == ["AD-1"]


async def test_async_requests_do_not_block_the_loop() -> None:
    # Each cash-out holds its wallet 0.3 s: ten at once take ~0.3 s unless the loop blocks.
    members = {f"m{i}": 1 for i in range(10)}
    with InProcessSandbox(lock_hold=0.3, members=members) as sb:
        async with sb.async_client(**FAST) as client:
            await client.authenticate()
            started = time.monotonic()
            results = await asyncio.gather(*(client.cashout(m) for m in members))
            elapsed = time.monotonic() - started
    assert [r.amount for r in results] == [Decimal(1)] * 10
    assert elapsed < 2.0  # 3.0 s if they ran one after another


async def test_async_delay_past_the_read_timeout(sb: InProcessSandbox) -> None:
    sb.add_fault(FaultRule("delay", phase="before", seconds=0.5, paths=(AUTH,), count=1))
    async with httpx.AsyncClient(transport=sb.async_transport(), timeout=0.1) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("http://sandbox" + AUTH, content=b"{}")
    assert sb.wait_idle(5)


# ------------------------------------------------------------------------------ the example
# What a downstream SDK's test suite looks like: docs/sandbox.md includes the code between the
# two markers, so the documented example is this tested one.


# --8<-- [start:example]
class PayoutService:
    """A downstream SDK's code: pays a member out through vpseal, on any httpx client."""

    def __init__(self, http_client: httpx.Client, **credentials: Any) -> None:
        self.vp = vpseal.Client(**credentials, http_client=http_client, max_retries=3)

    def pay_out(self, username: str, order_id: str) -> Decimal:
        try:
            return self.vp.cashout(username, trans_id=f"order-{order_id}").amount
        except vpseal.BalanceNotEnough:
            return Decimal(0)


@pytest.fixture
def wallet() -> Iterator[InProcessSandbox]:
    with InProcessSandbox(members={"alice": "25.50", "broke": 0}) as sandbox:
        yield sandbox


@pytest.fixture
def service(wallet: InProcessSandbox) -> PayoutService:
    return PayoutService(wallet.http_client(), **wallet.client_kwargs())


def test_example_pay_out(service: PayoutService, wallet: InProcessSandbox) -> None:
    assert service.pay_out("alice", "1001") == Decimal("25.50")
    assert service.pay_out("alice", "1001") == Decimal("25.50")  # a retry pays nothing more
    assert service.pay_out("broke", "1002") == 0
    assert wallet.balance("alice") == 0
    assert [t.trans_id for t in wallet.transactions("alice") if t.kind == "cashout"] == [
        "order-1001"
    ]


def test_example_pay_out_survives_a_lost_answer(
    service: PayoutService, wallet: InProcessSandbox
) -> None:
    wallet.add_fault(FaultRule("drop", phase="after", count=1))  # applied, answer lost
    assert service.pay_out("alice", "1003") == Decimal("25.50")
    assert wallet.stats()["cashouts applied"] == 1  # the retry got the same result
    assert wallet.balance("alice") == 0


# --8<-- [end:example]
