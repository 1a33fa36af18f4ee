"""Concurrent cash-outs of one member under one transId, in one client, share one cash-out.

Without this, twins race at the server: a twin still on its way (or delayed before the
server reads it) is invisible to the query another twin settles with, so a twin that was told
"wallet locked" could report a failure for a transId that its sibling then applied.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from decimal import Decimal

import pytest

import vpseal
from vpseal.sandbox import Sandbox

pytest_plugins = ["_sandbox_helpers"]

MakeSandbox = Callable[..., Sandbox]
CASHOUT = "requests /v2/members/cashout"
FAST = {"timeout": 5.0, "max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05}


def _cashouts(sandbox: Sandbox, username: str) -> list[str]:
    return [t.trans_id for t in sandbox.transactions(username) if t.kind == "cashout"]


def test_sync_twins_share_one_cashout(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lock_hold=0.3)
    sandbox.set_member("ann", "12.5")
    results: list[object] = [None] * 6
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as client:
        client.authenticate()

        def run(i: int) -> None:
            results[i] = client.cashout("ann", "T-twin")

        threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sandbox.stats()[CASHOUT] == 1
        assert all(r == results[0] for r in results)
        assert isinstance(results[0], vpseal.CashoutResult)
        assert results[0].amount == Decimal("12.5")
        # once it has landed, the same transId is sent again (the server answers the repeat)
        again = client.cashout("ann", "T-twin")
        assert again.amount == Decimal("12.5") and sandbox.stats()[CASHOUT] == 2
    assert _cashouts(sandbox, "ann") == ["T-twin"]


def test_other_members_or_transids_are_not_twins(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lock_hold=0.2)
    for name in ("bea", "cid"):
        sandbox.set_member(name, 3)
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as client:
        calls = [("bea", "T-1"), ("cid", "T-1"), ("bea", "T-2")]
        outcomes: list[object] = [None] * len(calls)

        def run(i: int) -> None:
            try:
                outcomes[i] = client.cashout(*calls[i])
            except vpseal.VPSealError as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sandbox.stats()[CASHOUT] >= 3  # each sent on its own (T-1 is the agent's: one wins)
    assert len(_cashouts(sandbox, "bea")) == 1 and len(_cashouts(sandbox, "cid")) <= 1


def test_a_sync_twin_waits_within_its_own_deadline(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lock_hold=1.0)
    sandbox.set_member("dan", 7)
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as client:
        client.authenticate()
        leader: list[object] = []
        thread = threading.Thread(target=lambda: leader.append(client.cashout("dan", "T-d")))
        thread.start()
        while sandbox.stats().get(CASHOUT, 0) == 0:
            threading.Event().wait(0.01)
        with pytest.raises(vpseal.OutcomeUnknown) as caught:
            client.with_options(deadline=0.2).cashout("dan", "T-d")
        assert caught.value.trans_id == "T-d"
        thread.join()
    assert isinstance(leader[0], vpseal.CashoutResult) and leader[0].amount == 7
    assert sandbox.stats()[CASHOUT] == 1 and _cashouts(sandbox, "dan") == ["T-d"]


def test_a_twin_shares_the_failure_too(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lock_hold=0.3)
    sandbox.set_member("eve", 0)  # nothing to withdraw: a ledger verdict, the same for both
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as client:
        client.authenticate()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                client.cashout("eve", "T-e")
            except vpseal.VPSealError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(errors) == 3 and len({type(e) for e in errors}) == 1
    assert isinstance(errors[0], vpseal.APIError)
    assert sandbox.stats()[CASHOUT] == 1


async def test_async_twins_share_one_cashout(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lock_hold=0.3)
    sandbox.set_member("fay", "0.25")
    async with vpseal.AsyncClient(**sandbox.client_kwargs(), **FAST) as client:
        results = await asyncio.gather(*(client.cashout("fay", "T-f") for _ in range(5)))
    assert sandbox.stats()[CASHOUT] == 1
    assert all(r == results[0] for r in results) and results[0].amount == Decimal("0.25")
    assert _cashouts(sandbox, "fay") == ["T-f"]


async def test_async_twins_of_a_cancelled_call_get_outcome_unknown(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(lock_hold=0.5)
    sandbox.set_member("gus", 9)
    async with vpseal.AsyncClient(**sandbox.client_kwargs(), **FAST) as client:
        await client.authenticate()
        first = asyncio.ensure_future(client.cashout("gus", "T-g"))
        while sandbox.stats().get(CASHOUT, 0) == 0:
            await asyncio.sleep(0.01)
        twin = asyncio.ensure_future(client.cashout("gus", "T-g"))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        with pytest.raises(vpseal.OutcomeUnknown) as caught:
            await twin
        assert caught.value.trans_id == "T-g"
        # nothing is lost: repeating the transId settles it, without a second withdrawal
        assert sandbox.wait_idle()
        result = await client.cashout("gus", "T-g")
        assert result.amount == 9
    assert _cashouts(sandbox, "gus") == ["T-g"]


async def test_an_async_twin_waits_within_its_own_deadline(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lock_hold=1.0)
    sandbox.set_member("hal", 4)
    async with vpseal.AsyncClient(**sandbox.client_kwargs(), **FAST) as client:
        await client.authenticate()
        first = asyncio.ensure_future(client.cashout("hal", "T-h"))
        while sandbox.stats().get(CASHOUT, 0) == 0:
            await asyncio.sleep(0.01)
        with pytest.raises(vpseal.OutcomeUnknown):
            await client.with_options(deadline=0.2).cashout("hal", "T-h")
        assert (await first).amount == 4
    assert sandbox.stats()[CASHOUT] == 1
