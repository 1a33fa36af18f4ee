"""The client under faults: never a second withdrawal, never a success that did not happen.

Deterministic scenarios first (one fault at a time, counted), then hundreds of concurrent
cash-outs while the sandbox drops connections after committing, delays past the client
timeout, answers HTTP 5xx and code 20; the ledger is the judge.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

import vpseal
from vpseal._client_core import CashoutFlow, RetryPolicy, Send
from vpseal.sandbox import FaultRule, Sandbox

pytest_plugins = ["_sandbox_helpers"]

MakeSandbox = Callable[..., Sandbox]
QUERY = "/v2/members/check/transactions"
CASHOUT = "/v2/members/cashout"
FAST: dict[str, Any] = {"timeout": 1.0, "max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05}


def _client(sandbox: Sandbox, **options: Any) -> vpseal.Client:
    return vpseal.Client(**{**sandbox.client_kwargs(), **FAST, **options})


def _cashouts(sandbox: Sandbox, username: str | None = None) -> list[str]:
    return [t.trans_id for t in sandbox.transactions(username) if t.kind == "cashout"]


# ------------------------------------------------------------------------------ one fault at a time


def test_drop_after_commit_is_retried_to_the_same_result(sandbox: Sandbox) -> None:
    sandbox.set_member("a", "10.000001")
    rule = sandbox.add_fault(FaultRule("drop", phase="after", count=1))
    with _client(sandbox) as c:
        result = c.cashout("a", "D-1")
    assert (result.amount, result.attempts, result.settled_by_query) == (
        Decimal("10.000001"), 2, False,
    )  # fmt: skip
    assert rule.fired == 1 and _cashouts(sandbox) == ["D-1"]


def test_drop_after_commit_then_code_3_is_settled_by_the_query(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(repeat="code-3", members={"b": "4.5"})
    sandbox.add_fault(FaultRule("drop", phase="after", count=1))
    with _client(sandbox) as c:
        result = c.cashout("b", "D-2")
    assert (result.amount, result.balance, result.settled_by_query) == (
        Decimal("4.5"), Decimal(0), True,
    )  # fmt: skip
    assert sandbox.stats()["requests " + QUERY] == 1 and _cashouts(sandbox) == ["D-2"]


def test_every_answer_lost_is_settled_by_the_query(sandbox: Sandbox) -> None:
    sandbox.set_member("c", 3)
    sandbox.add_fault(FaultRule("drop", phase="after"))
    with _client(sandbox) as c:
        result = c.cashout("c", "D-3")
    assert (result.amount, result.settled_by_query, result.attempts) == (Decimal(3), True, 4)
    assert _cashouts(sandbox) == ["D-3"]


def test_delay_past_the_client_timeout_then_pending_then_the_result(sandbox: Sandbox) -> None:
    sandbox.set_member("d", 8)
    sandbox.add_fault(FaultRule("delay", phase="locked", seconds=0.6, count=1))
    with _client(sandbox, timeout=0.2, max_retries=8, backoff_base=0.05, backoff_max=0.2) as c:
        result = c.cashout("d", "D-4")
    assert result.amount == Decimal(8) and result.attempts >= 2
    assert sandbox.stats().get("code 35", 0) >= 1  # the retry found its transId in flight
    assert _cashouts(sandbox) == ["D-4"]


def test_delay_after_commit_past_the_timeout(sandbox: Sandbox) -> None:
    sandbox.set_member("e", 2)
    sandbox.add_fault(FaultRule("delay", phase="after", seconds=0.5, count=1))
    with _client(sandbox, timeout=0.2) as c:
        result = c.cashout("e", "D-5")
    assert (result.amount, result.attempts) == (Decimal(2), 2)
    assert _cashouts(sandbox) == ["D-5"]


@pytest.mark.parametrize("phase", ["before", "after"])
def test_http_5xx_is_retried(sandbox: Sandbox, phase: str) -> None:
    sandbox.set_member("f", 6)
    sandbox.add_fault(FaultRule("http_error", status=503, phase=phase, count=2))  # type: ignore[arg-type]
    with _client(sandbox) as c:
        result = c.cashout("f", "D-6")
    assert (result.amount, result.attempts) == (Decimal(6), 3)
    assert _cashouts(sandbox) == ["D-6"]


def test_code_20_is_retried(sandbox: Sandbox) -> None:
    sandbox.set_member("g", 1)
    sandbox.add_fault(FaultRule("code", code=20, count=2))
    with _client(sandbox) as c:
        assert c.cashout("g").attempts == 3


def test_code_20_to_the_end_raises_wallet_locked_once_the_query_finds_nothing(
    sandbox: Sandbox,
) -> None:
    sandbox.set_member("h", 1)
    sandbox.add_fault(FaultRule("code", code=20))
    with _client(sandbox) as c, pytest.raises(vpseal.WalletLocked):
        c.cashout("h")
    stats = sandbox.stats()
    assert (stats["requests " + CASHOUT], stats["requests " + QUERY]) == (4, 1)
    assert sandbox.balance("h") == Decimal(1)


def test_code_20_to_the_end_while_a_twin_submission_applies_the_trans_id(
    sandbox: Sandbox,
) -> None:
    """Another submission of the same transId (another process, a repeat after a crash) holds
    the wallet and commits while this call only ever hears code 20: "locked" would be a false
    failure; the query shows the cash-out, which is this transId's result."""
    sandbox.set_member("hh", "3.5")
    sandbox.add_fault(FaultRule("code", code=20))
    with _client(sandbox) as c:
        c.authenticate()
        sandbox.ledger.cashout(sandbox.config.agent_id, "hh", "TWIN")  # the twin's commit
        result = c.cashout("hh", "TWIN")
    assert (result.amount, result.settled_by_query, result.attempts) == (Decimal("3.5"), True, 4)
    assert _cashouts(sandbox) == ["TWIN"]


def test_flow_code_20_to_the_end_then_a_deposit_under_that_id_is_wallet_locked() -> None:
    from vpseal._client_core import Answer, Envelope, Raise

    flow = CashoutFlow("u", "T", RetryPolicy(max_retries=0, backoff_base=0))
    flow.start()
    step = flow.on_outcome(Answer(Envelope(20, "locked", None, "l", 200)))
    assert isinstance(step, Send) and step.path == QUERY
    data = {"agent": "a", "transId": "T", "transactionTime": "2026-01-01T00:00:00.000Z",
            "amount": Decimal(5), "username": "u"}  # fmt: skip
    step = flow.on_outcome(Answer(Envelope(0, "ok", data, "l2", 200)))
    assert isinstance(step, Raise) and isinstance(step.error, vpseal.WalletLocked)


def test_5xx_to_the_end_is_an_unknown_outcome_not_a_failure(sandbox: Sandbox) -> None:
    """An HTTP 5xx may come after the server applied the request: the client cannot say
    "it failed"; it asks the query, finds nothing yet, and reports the outcome as unknown."""
    sandbox.set_member("i", 1)
    sandbox.add_fault(FaultRule("http_error", status=502))
    with _client(sandbox) as c, pytest.raises(vpseal.OutcomeUnknown) as info:
        c.cashout("i", "D-9")
    assert info.value.trans_id == "D-9"
    assert sandbox.stats()["requests " + QUERY] >= 1


def test_query_finding_nothing_while_an_attempt_is_still_in_flight_is_unknown(
    sandbox: Sandbox,
) -> None:
    """The first attempt sleeps in the server past the client's timeout and commits later:
    when the query (too early) finds nothing, "it failed" would be a lie."""
    sandbox.set_member("jj", 5)
    sandbox.add_fault(FaultRule("delay", phase="before", seconds=0.6, count=1))
    with _client(sandbox, timeout=0.2, max_retries=0) as c:
        c.authenticate()
        with pytest.raises(vpseal.OutcomeUnknown):
            c.cashout("jj", "LATE")
    assert sandbox.wait_idle()
    assert _cashouts(sandbox) == ["LATE"]


def test_query_finding_nothing_leads_to_a_resend_of_the_same_trans_id(sandbox: Sandbox) -> None:
    sandbox.set_member("kk", 5)
    sandbox.add_fault(FaultRule("delay", phase="before", seconds=0.6, count=1))
    with _client(sandbox, timeout=0.2, max_retries=1) as c:
        c.authenticate()
        result = c.cashout("kk", "LATE-2")
    assert sandbox.wait_idle()
    assert result.amount == Decimal(5) and _cashouts(sandbox) == ["LATE-2"]


def test_unknown_outcome_carries_the_trans_id_and_a_repeat_settles_it(sandbox: Sandbox) -> None:
    sandbox.set_member("j", "77.7")
    sandbox.add_fault(FaultRule("drop", phase="after", paths=(CASHOUT, QUERY)))
    with _client(sandbox) as c:
        with pytest.raises(vpseal.OutcomeUnknown) as info:
            c.cashout("j")
        trans_id = info.value.trans_id
        assert trans_id in str(info.value)
        assert _cashouts(sandbox) == [trans_id]  # it did happen: unknown was the honest answer
        sandbox.clear_faults()
        again = c.cashout("j", trans_id)  # repeating the transId is always safe
    assert again.amount == Decimal("77.7") and _cashouts(sandbox) == [trans_id]


def test_zero_balance_after_an_uncertain_attempt_is_checked_then_raised(sandbox: Sandbox) -> None:
    sandbox.set_member("k", 0)
    sandbox.add_fault(FaultRule("http_error", status=503, count=1))
    with _client(sandbox) as c, pytest.raises(vpseal.BalanceNotEnough):
        c.cashout("k", "D-11")
    assert sandbox.stats()["requests " + QUERY] == 1


def test_never_reached_server_is_a_transport_error() -> None:
    with vpseal.Client(
        "http://127.0.0.1:9", agent_id="a", api_key="00" * 32, secret="s", **FAST
    ) as c, pytest.raises(vpseal.TransportError):  # fmt: skip
        c.cashout("x")


# ------------------------------------------------------------------------------ malformed answers


def _mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> vpseal.Client:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return vpseal.Client(
        "http://vp.test", agent_id="a", api_key="00" * 32, secret="s", http_client=http,
        max_retries=1, backoff_base=0.0,
    )  # fmt: skip


def _ok(data: dict[str, Any] | None = None, code: int = 0) -> httpx.Response:
    body: dict[str, Any] = {"code": code, "message": "m", "logUUID": "u"}
    if data is not None:
        body["data"] = data
    return httpx.Response(200, content=json.dumps(body).encode())


TOKEN = {"accessToken": "t0k", "expiresIn": 3600, "tokenType": "Bearer"}


def test_cashout_answer_not_an_envelope_is_settled_by_the_query() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/auth":
            return _ok(TOKEN)
        if request.url.path == CASHOUT:
            return httpx.Response(200, content=b"<html>proxy</html>")
        return _ok({
            "agent": "a", "transId": "M-1", "transactionTime": "2026-02-03T06:18:06.963Z",
            "amount": -2323.582, "username": "u1",
        })  # fmt: skip

    with _mock_client(handler) as c:
        result = c.cashout("u1", "M-1")
    assert (result.amount, result.settled_by_query) == (Decimal("2323.582"), True)


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[]", b'{"message": "x", "logUUID": "u"}', b'{"code": "0", "message": "x"}',
     b'{"code": 0, "message": "x", "logUUID": "u", "data": {"agent": "a"}}',
     b'{"code": 0, "message": "x", "logUUID": "u", "data": {"agent": "a", "transId": "t",'
     b' "transactionTime": "2026-02-03T06:18:06.963Z", "amount": NaN, "username": "u"}}',
     b'{"code": 0, "message": "x", "logUUID": "u", "data": {"agent": "a", "transId": "t",'
     b' "transactionTime": "yesterday", "amount": 1, "username": "u"}}'],
)  # fmt: skip
def test_query_answer_not_the_documented_envelope_is_a_clear_error(content: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/auth":
            return _ok(TOKEN)
        return httpx.Response(200, content=content)

    with _mock_client(handler) as c, pytest.raises(vpseal.ResponseFormatError):
        c.check_transaction("u", "t")


def test_query_time_is_parsed_to_aware_utc() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/auth":
            return _ok(TOKEN)
        return _ok({
            "agent": "a", "transId": "t", "transactionTime": "2026-02-03T06:18:06.963Z",
            "amount": -1.5, "username": "u",
        })  # fmt: skip

    with _mock_client(handler) as c:
        tx = c.check_transaction("u", "t")
    assert tx.transaction_time.isoformat() == "2026-02-03T06:18:06.963000+00:00"
    assert tx.amount == Decimal("-1.5")


# ------------------------------------------------------------------------------ the state machine


def test_flow_code_3_after_uncertainty_with_a_deposit_under_that_id_is_transaction_exists() -> None:
    from vpseal._client_core import Answer, Envelope, NoAnswer, Raise
    from vpseal.api_errors import TransportError

    flow = CashoutFlow("u", "T", RetryPolicy(max_retries=1, backoff_base=0))
    flow.start()
    flow.on_outcome(NoAnswer(TransportError("drop"), True, True))
    flow.on_outcome(Answer(Envelope(3, "exists", None, "l", 200)))
    data = {"agent": "a", "transId": "T", "transactionTime": "2026-01-01T00:00:00.000Z",
            "amount": Decimal(5), "username": "u"}  # fmt: skip
    step = flow.on_outcome(Answer(Envelope(0, "ok", data, "l2", 200)))
    assert isinstance(step, Raise) and isinstance(step.error, vpseal.TransactionExists)


def test_flow_query_pending_to_the_end_is_unknown() -> None:
    from vpseal._client_core import Answer, Envelope, NoAnswer, Raise, Send
    from vpseal.api_errors import TransportError

    flow = CashoutFlow("u", "T", RetryPolicy(max_retries=2, backoff_base=0))
    flow.start()
    steps = [flow.on_outcome(NoAnswer(TransportError("timeout"), True, True)) for _ in range(3)]
    assert [s.path for s in steps if isinstance(s, Send)] == [CASHOUT, CASHOUT, QUERY]
    pending = Answer(Envelope(35, "pending", None, "l", 200))
    steps = [flow.on_outcome(pending) for _ in range(3)]
    assert isinstance(steps[-1], Raise) and isinstance(steps[-1].error, vpseal.OutcomeUnknown)
    assert all(isinstance(s, Send) and s.path == QUERY for s in steps[:-1])


# ------------------------------------------------------------------------------ under load


def _fault_storm(seed: int) -> list[FaultRule]:
    both = (CASHOUT, QUERY)
    return [
        FaultRule("drop", phase="after", probability=0.12),
        FaultRule("delay", phase="before", seconds=0.5, probability=0.03),
        FaultRule("delay", phase="locked", seconds=0.5, probability=0.03),
        # only cash-outs that get the lock draw "locked" rules, a few hundred in a storm, so
        # a 3 % rule alone can miss: these two make sure the storm has slow ledgers in it
        FaultRule("delay", phase="locked", seconds=0.5, count=2),
        FaultRule("delay", phase="after", seconds=0.5, probability=0.03),
        FaultRule("http_error", status=503, phase="before", probability=0.06, paths=both),
        FaultRule("http_error", status=502, phase="after", probability=0.06),
        FaultRule("code", code=20, phase="before", probability=0.10),
        FaultRule("drop", phase="after", probability=0.05, paths=(QUERY,)),
    ]


def _judge(
    sandbox: Sandbox,
    balances: dict[str, Decimal],
    calls: list[tuple[str, str]],
    outcomes: list[object],
    exactly_once: bool = True,
) -> Counter[str]:
    """Every member cashed out exactly once (at most once when retries are too few to get
    through), books balanced, and every call's report true."""
    assert sandbox.wait_idle(), "requests still in progress on the server"
    ledger = {t.trans_id: t for t in sandbox.transactions() if t.kind == "cashout"}
    per_member = Counter(t.username for t in ledger.values())
    assert max(per_member.values()) == 1, "a member was cashed out twice"
    if exactly_once:
        assert set(per_member) == set(balances), "a member was not cashed out"
    for tx in ledger.values():
        assert Decimal(-tx.amount) / 1_000_000 == balances[tx.username]
        assert sandbox.balance(tx.username) == 0
    totals = sandbox.totals()
    assert totals["conserved"] is True
    assert totals["credit_total"] == sum(balances.values())
    assert totals["debit_total"] == sum(balances[u] for u in per_member)
    assert totals["balance_total"] == sum(b for u, b in balances.items() if u not in per_member)
    assert set(ledger) <= {tid for _, tid in calls}, "a withdrawal under an unknown transId"

    kinds: Counter[str] = Counter()
    for (username, tid), outcome in zip(calls, outcomes, strict=True):
        kinds[type(outcome).__name__] += 1
        if isinstance(outcome, vpseal.CashoutResult):
            assert tid in ledger and ledger[tid].username == username, "false success"
            assert outcome.trans_id == tid
            assert (outcome.amount, outcome.balance) == (balances[username], 0)
            kinds["settled_by_query"] += outcome.settled_by_query
            kinds["retried"] += outcome.attempts > 1
        elif isinstance(outcome, vpseal.OutcomeUnknown):
            assert outcome.trans_id == tid
        elif isinstance(outcome, (vpseal.BalanceNotEnough, vpseal.WalletLocked)):
            assert tid not in ledger, f"{type(outcome).__name__} for a cash-out that happened"
        elif isinstance(outcome, vpseal.TransactionExists):  # a duplicate submission's answer
            assert tid in ledger, "TransactionExists for a transId that was never used"
        elif isinstance(outcome, vpseal.TransportError):
            assert tid not in ledger, "TransportError for a cash-out that happened"
        else:
            raise AssertionError(f"unexpected outcome {outcome!r}")
    return kinds


def _plan(members: int, seed: int) -> tuple[dict[str, Decimal], list[tuple[str, str]]]:
    """Two calls per member: the same transId twice (a duplicate submission) for half the
    members, two different transIds (competing cash-outs) for the other half."""
    rng = random.Random(seed)
    balances = {
        f"m{i:03d}": Decimal(rng.randint(1, 10**10)).scaleb(-6) for i in range(members)
    }
    calls = []
    for i, username in enumerate(balances):
        first = f"{username}-a"
        calls += [(username, first), (username, first if i % 2 else f"{username}-b")]
    rng.shuffle(calls)
    return balances, calls


async def test_hundreds_of_concurrent_cashouts_under_faults(make_sandbox: MakeSandbox) -> None:
    balances, calls = _plan(160, seed=4)
    sandbox = make_sandbox(faults=_fault_storm(4), seed=4, members=balances)
    timeout = httpx.Timeout(0.35, pool=30.0)
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(limits=limits) as http, vpseal.AsyncClient(
        **sandbox.client_kwargs(), http_client=http, timeout=timeout,
        max_retries=8, backoff_base=0.02, backoff_max=0.25, retry_budget=None,
    ) as client:  # fmt: skip
        await client.authenticate()
        outcomes = await asyncio.gather(
            *(client.cashout(u, t) for u, t in calls), return_exceptions=True
        )
    kinds = _judge(sandbox, balances, calls, list(outcomes))
    stats = sandbox.stats()
    # the storm really happened, and most calls still got their true result
    for fault in ("drop after", "delay before", "delay locked", "delay after", "http_error before",
                  "http_error after", "code before"):  # fmt: skip
        assert stats.get(f"fault {fault}", 0) > 0, (fault, stats)
    assert kinds["CashoutResult"] >= len(calls) // 2, kinds
    assert kinds["retried"] > 0, kinds


def test_concurrent_sync_cashouts_under_faults(make_sandbox: MakeSandbox) -> None:
    balances, calls = _plan(40, seed=7)
    sandbox = make_sandbox(faults=_fault_storm(7), seed=7, members=balances, repeat="code-3")
    outcomes: list[object] = [None] * len(calls)
    # few retries: many calls run out of them and must settle through the query
    with _client(sandbox, timeout=0.35, max_retries=2, backoff_base=0.02, backoff_max=0.1) as c:
        c.authenticate()

        def run(index: int) -> None:
            username, tid = calls[index]
            try:
                outcomes[index] = c.cashout(username, tid)
            except vpseal.VPSealError as exc:
                outcomes[index] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    kinds = _judge(sandbox, balances, calls, outcomes, exactly_once=False)
    assert kinds["CashoutResult"] >= len(calls) // 3, kinds
    assert kinds["settled_by_query"] > 0, kinds  # code 3 after a lost answer: the query decides


# ---------------------------------------------------------------------- token expiry mid-retry


def _scripted(script: list[Callable[[httpx.Request], httpx.Response]]) -> tuple[
    vpseal.Client, list[str]
]:
    """A client whose requests get the scripted answers in order (and fail the test past it)."""
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        assert script, f"unexpected extra request {request.url.path}"
        return script.pop(0)(request)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = vpseal.Client(
        "http://vp.test", agent_id="a", api_key="00" * 32, secret="s", http_client=http,
        max_retries=2, backoff_base=0.0,
    )  # fmt: skip
    return client, paths


def _answer(data: dict[str, Any] | None = None, code: int = 0) -> Any:
    return lambda request: _ok(data, code)


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


WITHDRAWAL = {"agent": "a", "transId": "E-1", "transactionTime": "2026-02-03T06:18:06.963Z",
              "amount": Decimal("-7.25"), "username": "u"}  # fmt: skip


def test_token_refused_after_an_uncertain_attempt_is_renewed_and_settled() -> None:
    client, paths = _scripted([
        _answer(TOKEN), _timeout,  # the first cash-out may have been applied
        _answer(code=83), _answer(TOKEN),  # token expired meanwhile: renewed once
        _answer(code=3), _answer({**WITHDRAWAL, "amount": -7.25}),  # exists: the query decides
    ])  # fmt: skip
    with client:
        result = client.cashout("u", "E-1")
    assert (result.amount, result.settled_by_query) == (Decimal("7.25"), True)
    assert paths == ["/v2/auth", CASHOUT, CASHOUT, "/v2/auth", CASHOUT, QUERY]


def test_token_renewal_failing_after_an_uncertain_attempt_is_unknown() -> None:
    client, _ = _scripted([
        _answer(TOKEN), _timeout, _answer(code=83),
        _answer(code=10),  # the renewal is refused
    ])  # fmt: skip
    with client, pytest.raises(vpseal.OutcomeUnknown) as info:
        client.cashout("u", "E-1")
    assert info.value.trans_id == "E-1"
    assert isinstance(info.value.__cause__, vpseal.AgentNotFound)


def test_second_83_after_an_uncertain_attempt_settles_and_a_refused_query_is_unknown() -> None:
    client, paths = _scripted([
        _answer(TOKEN), _timeout, _answer(code=83), _answer(TOKEN),
        _answer(code=83),  # refused again: not renewed twice, but never "failed" either
        _answer(code=83),  # and the query is refused too
    ])  # fmt: skip
    with client, pytest.raises(vpseal.OutcomeUnknown):
        client.cashout("u", "E-1")
    assert paths[-1] == QUERY and paths.count("/v2/auth") == 2
