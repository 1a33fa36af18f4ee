"""The asynchronous client against the sandbox over real HTTP on loopback: the same behaviour
as the sync client, since both run the flows of vpseal._client_core."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

import vpseal
from vpseal.sandbox import FaultRule, Sandbox

pytest_plugins = ["_sandbox_helpers"]

MakeSandbox = Callable[..., Sandbox]
FAST: dict[str, Any] = {"timeout": 2.0, "max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05}


def _client(sandbox: Sandbox, **options: Any) -> vpseal.AsyncClient:
    return vpseal.AsyncClient(**{**sandbox.client_kwargs(), **FAST, **options})


async def test_cashout_and_query(sandbox: Sandbox, aclient: vpseal.AsyncClient) -> None:
    sandbox.set_member("alice", "2323.582")
    result = await aclient.cashout("alice")
    assert re.fullmatch(r"[0-9a-f]{32}", result.trans_id)
    assert (result.amount, result.balance) == (Decimal("2323.582"), Decimal(0))
    tx = await aclient.check_transaction("alice", result.trans_id)
    assert (tx.trans_id, tx.username, tx.amount) == (result.trans_id, "alice", Decimal("-2323.582"))
    assert tx.transaction_time.tzinfo is timezone.utc
    again = await aclient.cashout("alice", result.trans_id)
    assert (again.amount, sandbox.totals()["cashouts"]) == (Decimal("2323.582"), 1)


@pytest.mark.parametrize(
    ("setup", "call", "error"),
    [
        ({"bob": 0}, ("cashout", "bob", "T"), vpseal.BalanceNotEnough),
        ({"bob": 1}, ("check", "bob", "none"), vpseal.TransactionNotFound),
        ({}, ("cashout", "nobody", "T"), vpseal.MemberNotFound),
        ({"bob": 1}, ("cashout", "", "T"), vpseal.ParametersError),
    ],
)
async def test_error_codes(
    sandbox: Sandbox,
    aclient: vpseal.AsyncClient,
    setup: dict[str, int],
    call: tuple[str, str, str],
    error: type[vpseal.APIError],
) -> None:
    for name, balance in setup.items():
        sandbox.set_member(name, balance)
    kind, username, trans_id = call
    with pytest.raises(error) as info:
        if kind == "cashout":
            await aclient.cashout(username, trans_id)
        else:
            await aclient.check_transaction(username, trans_id)
    assert info.value.code == error.code and info.value.message == error.default_message


async def test_blocked_member_and_foreign_trans_id(
    sandbox: Sandbox, aclient: vpseal.AsyncClient
) -> None:
    sandbox.set_member("c", 1, blocked=True)
    sandbox.set_member("d", 1)
    sandbox.set_member("e", 1)
    with pytest.raises(vpseal.InvalidAccount):
        await aclient.cashout("c")
    await aclient.cashout("d", "X")
    with pytest.raises(vpseal.TransactionExists):
        await aclient.cashout("e", "X")


async def test_auth_errors(sandbox: Sandbox) -> None:
    async with _client(sandbox, agent_id="ghost") as c:
        with pytest.raises(vpseal.AgentNotFound):
            await c.authenticate()
    async with _client(sandbox, secret="wrong") as c:
        with pytest.raises(vpseal.AuthenticationFailed):
            await c.authenticate()
    async with _client(sandbox, api_key="cd" * 32) as c:
        with pytest.raises(vpseal.DecryptionFailed):
            await c.authenticate()


async def test_wallet_locked_and_pending(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lock_hold=1.5, members={"f": 5})
    async with _client(sandbox) as c, _client(sandbox, max_retries=0) as impatient:
        await impatient.authenticate()
        holder = asyncio.create_task(c.cashout("f", "HOLD"))
        while sandbox.stats().get("requests /v2/members/cashout", 0) == 0:  # the lock is held
            await asyncio.sleep(0.01)
        with pytest.raises(vpseal.WalletLocked):
            await impatient.cashout("f", "OTHER")
        with pytest.raises(vpseal.TransactionPending):
            await impatient.check_transaction("f", "HOLD")
        assert (await holder).amount == Decimal(5)
    assert sandbox.balance("f") == 0


async def test_token_renewed_ahead_of_expiry_and_after_83(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(token_ttl=1.0, members={"g": 1, "h": 2})
    async with _client(sandbox) as c:
        await c.authenticate()
        await asyncio.sleep(0.95)
        await c.cashout("g")
        assert sandbox.stats()["requests /v2/auth"] == 2
        sandbox.revoke_tokens()
        await c.cashout("h")
    stats = sandbox.stats()
    assert (stats["requests /v2/auth"], stats["code 83"]) == (3, 1)


async def test_token_fetch_is_single_flight(sandbox: Sandbox, aclient: vpseal.AsyncClient) -> None:
    sandbox.set_member("i", 1)

    async def query() -> None:
        with pytest.raises(vpseal.TransactionNotFound):
            await aclient.check_transaction("i", "none")

    await asyncio.gather(*(query() for _ in range(30)))
    assert sandbox.stats()["requests /v2/auth"] == 1
    sandbox.revoke_tokens()
    await asyncio.gather(*(query() for _ in range(30)))
    assert sandbox.stats()["requests /v2/auth"] == 2


async def test_faults_are_retried_and_settled(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(repeat="code-3", members={"j": "9.99", "k": 1, "l": 1})
    sandbox.add_fault(FaultRule("drop", phase="after", count=1))
    async with _client(sandbox) as c:
        result = await c.cashout("j")
        assert (result.amount, result.settled_by_query) == (Decimal("9.99"), True)
        sandbox.set_faults([FaultRule("code", code=20, count=2)])
        assert (await c.cashout("k")).attempts == 3
        both = ("/v2/members/cashout", "/v2/members/check/transactions")
        sandbox.set_faults([FaultRule("drop", paths=both)])
        with pytest.raises(vpseal.OutcomeUnknown) as info:
            await c.cashout("l", "L-1")
    assert info.value.trans_id == "L-1"
    assert sandbox.totals()["cashouts"] == 3 and sandbox.totals()["conserved"] is True


async def test_config_and_own_http_client(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.set_member("m", 4)
    for name, value in sandbox.client_env().items():
        monkeypatch.setenv(name, value)
    async with httpx.AsyncClient() as http:
        async with vpseal.AsyncClient(http_client=http) as c:
            assert (await c.cashout("m")).amount == Decimal(4)
            assert "hidden" in repr(c) and sandbox.config.secret not in repr(c)
        assert not http.is_closed
    monkeypatch.delenv("VPSEAL_SECRET")
    with pytest.raises(vpseal.ConfigError, match="VPSEAL_SECRET"):
        vpseal.AsyncClient()


async def test_connection_refused_is_a_transport_error() -> None:
    async with vpseal.AsyncClient(
        "http://127.0.0.1:9", agent_id="a", api_key="00" * 32, secret="s", **FAST
    ) as c:
        with pytest.raises(vpseal.TransportError):
            await c.cashout("x")


async def test_repeat_after_an_unknown_outcome_settles_it_on_a_code_3_server(
    make_sandbox: MakeSandbox,
) -> None:
    """OutcomeUnknown says: repeat the cash-out with its transId. On a server that answers a
    repeat with code 3, that repeat must report the cash-out (from the query), not an error."""
    sandbox = make_sandbox(repeat="code-3", members={"n": "6.25"})
    both = ("/v2/members/cashout", "/v2/members/check/transactions")
    sandbox.set_faults([FaultRule("drop", paths=both)])
    async with _client(sandbox, max_retries=1) as c:
        with pytest.raises(vpseal.OutcomeUnknown) as info:
            await c.cashout("n")
        sandbox.clear_faults()
        again = await c.cashout("n", info.value.trans_id)
    assert (again.amount, again.balance, again.settled_by_query) == (Decimal("6.25"), 0, True)
    assert sandbox.totals()["cashouts"] == 1 and sandbox.balance("n") == 0
