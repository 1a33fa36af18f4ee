"""Every transition of the cash-out state machine (CashoutFlow), one test each.

The flow is I/O-free, so each transition is driven directly with outcomes and the step it
returns is asserted (phase, path, counters, the error raised). The transitions that decide
whether money moved are driven end to end in test_settle_sandbox.py (the ledger as judge).

Coverage of CashoutFlow's branches (100 % with this module alone):
    coverage run --branch --include='*/_client_core.py' -m pytest tests/test_settle_transitions.py
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

import vpseal
from vpseal._client_core import (
    UNLIMITED_RETRIES,
    Answer,
    CashoutFlow,
    CashoutResult,
    Done,
    Envelope,
    NoAnswer,
    Outcome,
    Raise,
    RetryBudget,
    RetryPolicy,
    Send,
    Step,
)
from vpseal.api_errors import ResponseFormatError, TransportError

CASHOUT = "/v2/members/cashout"
QUERY = "/v2/members/check/transactions"
FAST: dict[str, Any] = {"timeout": 1.0, "max_retries": 2, "backoff_base": 0.0, "backoff_max": 0.0}

DROP = NoAnswer(TransportError("dropped after sending"), True, True)  # may have been applied
REFUSED = NoAnswer(TransportError("connection refused"), False, True)  # cannot have been
FATAL_SENT = NoAnswer(ResponseFormatError("not the envelope"), True, False)  # 2xx, unreadable
FATAL_UNSENT = NoAnswer(ResponseFormatError("a 4xx page"), False, False)


def _flow(
    max_retries: int = 1, budget: RetryBudget = UNLIMITED_RETRIES, user: str = "u"
) -> CashoutFlow:
    return CashoutFlow(user, "T", RetryPolicy(max_retries=max_retries, backoff_base=0), budget)


def _answer(code: int, data: dict[str, Any] | None = None, status: int = 200) -> Answer:
    return Answer(Envelope(code, f"message {code}", data, f"log-{code}", status))


def _tx(amount: Any, trans_id: str = "T", username: str = "u") -> dict[str, Any]:
    return {
        "agent": "a", "transId": trans_id, "transactionTime": "2026-01-01T00:00:00.000Z",
        "amount": amount, "username": username,
    }  # fmt: skip


def _found(amount: Any, **kw: Any) -> Answer:
    return _answer(0, _tx(amount, **kw))


CASHED = _answer(0, {"amount": Decimal("2.5"), "balance": Decimal(0)})


def _drive(flow: CashoutFlow, outcomes: Sequence[Outcome]) -> list[Step[CashoutResult]]:
    steps: list[Step[CashoutResult]] = [flow.start()]
    for outcome in outcomes:
        last = steps[-1]
        assert isinstance(last, Send), f"the flow ended before {outcome!r}: {last!r}"
        steps.append(flow.on_outcome(outcome))
    return steps


def _paths(steps: Sequence[Step[CashoutResult]]) -> list[str]:
    return [s.path for s in steps if isinstance(s, Send)]


def _raised(step: Step[CashoutResult], kind: type[BaseException]) -> BaseException:
    assert isinstance(step, Raise), step
    assert isinstance(step.error, kind), step.error
    return step.error


def _done(step: Step[CashoutResult]) -> CashoutResult:
    assert isinstance(step, Done), step
    result: CashoutResult = step.value
    return result


# ------------------------------------------------------------------------------ phase "cashout"


def test_code_0_at_once_earns_a_retry_token() -> None:
    budget = RetryBudget(capacity=10, cost=5)
    assert budget.spend()  # 5 of 10 left
    steps = _drive(_flow(budget=budget), [CASHED])
    result = _done(steps[-1])
    assert (result.amount, result.balance, result.attempts, result.settled_by_query) == (
        Decimal("2.5"), Decimal(0), 1, False,
    )  # fmt: skip
    assert repr(budget) == "RetryBudget(6/10)"


def test_code_0_after_a_retry_earns_nothing() -> None:
    budget = RetryBudget(capacity=20, cost=5)
    steps = _drive(_flow(budget=budget), [REFUSED, CASHED])
    assert _paths(steps) == [CASHOUT, CASHOUT]
    assert _done(steps[-1]).attempts == 2
    assert repr(budget) == "RetryBudget(15/20)"  # one retry spent, none earned back


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"amount": "x", "balance": 0},
        {"amount": Decimal(-1), "balance": Decimal(0)},
        {"amount": Decimal(1), "balance": Decimal("0.000001")},
        {"amount": Decimal(1)},
    ],
    ids=["no-data", "amount-not-number", "negative", "balance-not-0", "no-balance"],
)
def test_code_0_with_unreadable_data_settles_through_the_query(data: Any) -> None:
    flow = _flow(max_retries=0)
    steps = _drive(flow, [_answer(0, data)])
    assert _paths(steps) == [CASHOUT, QUERY] and flow.uncertain and flow.phase == "settle"
    assert isinstance(flow.pending, ResponseFormatError)
    result = _done(flow.on_outcome(_found(Decimal("-7.25"))))
    assert (result.amount, result.settled_by_query) == (Decimal("7.25"), True)


def test_code_0_unreadable_then_nothing_found_is_re_sent_then_unknown() -> None:
    flow = _flow(max_retries=1)
    steps = _drive(flow, [_answer(0, None), _answer(4), _answer(0, None), _answer(4)])
    assert _paths(steps) == [CASHOUT, QUERY, CASHOUT, QUERY]
    _raised(steps[-1], vpseal.OutcomeUnknown)


def test_no_answer_not_sent_and_not_retryable_is_the_error() -> None:
    steps = _drive(_flow(), [FATAL_UNSENT])
    assert _raised(steps[-1], ResponseFormatError) is FATAL_UNSENT.error


def test_no_answer_sent_and_not_retryable_settles() -> None:
    flow = _flow()
    steps = _drive(flow, [FATAL_SENT])
    assert _paths(steps) == [CASHOUT, QUERY] and flow.uncertain
    assert flow.pending is FATAL_SENT.error


def test_not_sent_then_not_retryable_after_an_uncertain_attempt_settles() -> None:
    flow = _flow(max_retries=2)
    steps = _drive(flow, [DROP, FATAL_UNSENT])
    assert _paths(steps) == [CASHOUT, CASHOUT, QUERY]


def test_refused_to_the_end_is_the_last_error_not_unknown() -> None:
    flow = _flow(max_retries=2)
    steps = _drive(flow, [REFUSED, REFUSED, REFUSED])
    assert _paths(steps) == [CASHOUT] * 3 and not flow.uncertain
    assert _raised(steps[-1], TransportError) is REFUSED.error


def test_dropped_to_the_end_settles() -> None:
    flow = _flow(max_retries=2)
    steps = _drive(flow, [DROP, REFUSED, REFUSED])
    assert _paths(steps) == [CASHOUT, CASHOUT, CASHOUT, QUERY]


def test_retry_after_is_a_minimum_delay() -> None:
    flow = _flow(max_retries=1)
    steps = _drive(flow, [NoAnswer(TransportError("503"), True, True, 2.5)])
    assert isinstance(steps[-1], Send) and steps[-1].delay == 2.5 and steps[-1].attempt == 2


def test_an_empty_retry_budget_stops_re_sending() -> None:
    budget = RetryBudget(capacity=4, cost=5)  # cannot pay for one retry
    steps = _drive(_flow(max_retries=3, budget=budget), [REFUSED])
    _raised(steps[-1], TransportError)
    flow = _flow(max_retries=3, budget=RetryBudget(capacity=4, cost=5))
    steps = _drive(flow, [DROP])
    assert _paths(steps) == [CASHOUT, QUERY]  # uncertain: settled, never re-sent


def test_code_83_renews_the_token_once_then_is_the_error() -> None:
    flow = _flow(max_retries=3)
    steps = _drive(flow, [_answer(83), _answer(83)])
    assert isinstance(steps[1], Send) and steps[1].renew_token and steps[1].path == CASHOUT
    _raised(steps[-1], vpseal.AuthenticationFailed)
    assert flow.attempts == 2


def test_code_83_twice_after_an_uncertain_attempt_settles() -> None:
    flow = _flow(max_retries=3)
    steps = _drive(flow, [DROP, _answer(83), _answer(83)])
    assert _paths(steps) == [CASHOUT, CASHOUT, CASHOUT, QUERY]
    assert isinstance(flow.pending, vpseal.AuthenticationFailed)


def test_code_3_settles_even_on_a_first_attempt() -> None:
    flow = _flow()
    steps = _drive(flow, [_answer(3)])
    assert _paths(steps) == [CASHOUT, QUERY] and not flow.uncertain
    assert isinstance(flow.pending, vpseal.TransactionExists)


def test_code_20_is_re_sent_then_settled() -> None:
    flow = _flow(max_retries=1)
    steps = _drive(flow, [_answer(20), _answer(20)])
    assert _paths(steps) == [CASHOUT, CASHOUT, QUERY] and not flow.uncertain
    # the query finds nothing: no attempt of ours was applied, "locked" stands
    _raised(flow.on_outcome(_answer(4)), vpseal.WalletLocked)


def test_code_35_makes_the_flow_uncertain() -> None:
    flow = _flow(max_retries=1)
    steps = _drive(flow, [_answer(35), _answer(35)])
    assert _paths(steps) == [CASHOUT, CASHOUT, QUERY] and flow.uncertain
    assert isinstance(flow.pending, vpseal.TransactionPending)


def test_code_7_makes_the_flow_uncertain_and_settles() -> None:
    flow = _flow(max_retries=3)
    steps = _drive(flow, [_answer(7)])
    assert _paths(steps) == [CASHOUT, QUERY] and flow.uncertain
    assert isinstance(flow.pending, vpseal.InternalServerError)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (2, vpseal.BalanceNotEnough),
        (8, vpseal.MemberNotFound),
        (19, vpseal.InvalidAccount),
        (10, vpseal.AgentNotFound),
        (11, vpseal.ParametersError),
        (84, vpseal.DecryptionFailed),
        (4, vpseal.TransactionNotFound),
        (999, vpseal.APIError),
    ],
)
def test_other_codes_on_a_first_attempt_are_the_answer(code: int, kind: type[Exception]) -> None:
    flow = _flow(max_retries=3)
    steps = _drive(flow, [_answer(code, status=200)])
    error = _raised(steps[-1], kind)
    assert getattr(error, "code", None) == code and flow.attempts == 1 and flow.queries == 0


@pytest.mark.parametrize("code", [2, 8, 10, 11, 19, 84, 999])
def test_other_codes_after_an_uncertain_attempt_settle(code: int) -> None:
    flow = _flow(max_retries=3)
    steps = _drive(flow, [DROP, _answer(code)])
    assert _paths(steps) == [CASHOUT, CASHOUT, QUERY]
    assert getattr(flow.pending, "code", None) == code


# ------------------------------------------------------------------------------ phase "settle"


def _settling(max_retries: int = 1, budget: RetryBudget = UNLIMITED_RETRIES) -> CashoutFlow:
    """A flow whose only attempt was dropped and whose retries are spent: now querying."""
    flow = _flow(max_retries=max_retries, budget=budget)
    _drive(flow, [DROP] * (max_retries + 1))
    assert flow.phase == "settle" and flow.uncertain and flow.queries == 1
    return flow


def test_query_finds_the_withdrawal() -> None:
    flow = _settling()
    result = _done(flow.on_outcome(_found(Decimal("-0.000001"))))
    assert (result.trans_id, result.amount, result.balance, result.log_uuid) == (
        "T", Decimal("0.000001"), Decimal(0), "log-0",
    )  # fmt: skip
    assert (result.attempts, result.settled_by_query) == (2, True)


@pytest.mark.parametrize("amount", [Decimal(0), Decimal("0.000001"), Decimal(5)])
def test_query_finds_a_zero_or_deposit_amount_while_uncertain_is_unknown(amount: Decimal) -> None:
    error = _raised(_settling().on_outcome(_found(amount)), vpseal.OutcomeUnknown)
    assert "deposit" in str(error) and error.trans_id == "T"  # type: ignore[attr-defined]


@pytest.mark.parametrize("amount", [Decimal(0), Decimal(3)])
def test_query_finds_a_zero_or_deposit_amount_after_code_3_is_transaction_exists(
    amount: Decimal,
) -> None:
    flow = _flow()
    _drive(flow, [_answer(3)])
    _raised(flow.on_outcome(_found(amount)), vpseal.TransactionExists)
    flow = _flow(max_retries=2)  # uncertain too: still not ours
    _drive(flow, [DROP, _answer(3)])
    _raised(flow.on_outcome(_found(amount)), vpseal.TransactionExists)


def test_query_finds_a_deposit_after_code_20_to_the_end_is_wallet_locked() -> None:
    flow = _flow(max_retries=0)
    _drive(flow, [_answer(20)])
    _raised(flow.on_outcome(_found(Decimal(0))), vpseal.WalletLocked)


@pytest.mark.parametrize(
    "answer",
    [
        _answer(0, None),
        _answer(0, {"transId": "T"}),
        _found("-1.5"),
        _found(Decimal("-1e-7")),
        _answer(0, {**_tx(Decimal(-1)), "transactionTime": "yesterday"}),
        _answer(0, {**_tx(Decimal(-1)), "transactionTime": "2026-01-01T00:00:00"}),
        _answer(0, {**_tx(Decimal(-1)), "username": 5}),
    ],
    ids=[
        "no-data",
        "fields-missing",
        "amount-string",
        "amount-7-places",
        "time-unreadable",
        "time-no-offset",
        "username-not-string",
    ],
)
def test_unreadable_query_answer_is_unknown(answer: Answer) -> None:
    error = _raised(_settling().on_outcome(answer), vpseal.OutcomeUnknown)
    assert "unreadable transaction query answer" in str(error)


@pytest.mark.parametrize(
    "answer",
    [
        _found(Decimal(-1), trans_id="OTHER"),
        _found(Decimal(-1), username="someone"),
        _found(Decimal(-1), trans_id="t"),
    ],
    ids=["other-trans-id", "other-member", "trans-id-case"],
)
def test_foreign_query_answer_is_unknown(answer: Answer) -> None:
    error = _raised(_settling().on_outcome(answer), vpseal.OutcomeUnknown)
    assert "another transaction" in str(error)


def test_query_finds_nothing_while_certain_raises_the_pending_error() -> None:
    flow = _flow()
    _drive(flow, [_answer(3)])
    _raised(flow.on_outcome(_answer(4)), vpseal.TransactionExists)
    flow = _flow()
    _drive(flow, [_answer(3)])
    _raised(flow.on_outcome(_answer(8)), vpseal.TransactionExists)


@pytest.mark.parametrize("code", [2, 8, 19])
@pytest.mark.parametrize("not_found", [4, 8])
def test_query_finds_nothing_after_a_ledger_verdict_raises_the_verdict(
    code: int, not_found: int
) -> None:
    flow = _flow(max_retries=3)
    _drive(flow, [DROP, _answer(code)])
    error = _raised(flow.on_outcome(_answer(not_found)), vpseal.APIError)
    assert error.code == code  # type: ignore[attr-defined]
    assert flow.attempts == 2  # not re-sent


@pytest.mark.parametrize("not_found", [4, 8])
def test_query_finds_nothing_while_uncertain_re_sends_the_same_trans_id(not_found: int) -> None:
    flow = _flow(max_retries=2)
    steps = _drive(flow, [DROP, _answer(7), _answer(not_found)])
    assert _paths(steps) == [CASHOUT, CASHOUT, QUERY, CASHOUT]
    last = steps[-1]
    assert isinstance(last, Send) and last.payload == {"username": "u", "transId": "T"}
    assert last.reason == "query found no transaction" and flow.phase == "cashout"
    assert _done(flow.on_outcome(CASHED)).attempts == 3


def test_query_finds_nothing_while_uncertain_without_retries_is_unknown() -> None:
    flow = _settling(max_retries=1)
    error = _raised(flow.on_outcome(_answer(4)), vpseal.OutcomeUnknown)
    assert "no transaction found" in str(error) and flow.attempts == 2


def test_query_finds_nothing_with_an_empty_budget_is_unknown() -> None:
    budget = RetryBudget(capacity=5, cost=5)
    flow = _flow(max_retries=3, budget=budget)
    _drive(flow, [DROP, _answer(7)])  # the one affordable retry is spent
    _raised(flow.on_outcome(_answer(4)), vpseal.OutcomeUnknown)
    assert flow.attempts == 2


def test_query_answered_83_renews_once_then_unknown() -> None:
    flow = _settling()
    step = flow.on_outcome(_answer(83))
    assert isinstance(step, Send) and step.path == QUERY and step.renew_token
    error = _raised(flow.on_outcome(_answer(83)), vpseal.OutcomeUnknown)
    assert "the transaction query answered" in str(error)


def test_query_answered_83_after_the_cash_out_renewed_is_unknown() -> None:
    flow = _flow(max_retries=0)
    _drive(flow, [_answer(83), DROP])  # renewed on the cash-out, then dropped: settling
    assert flow.renewed and flow.phase == "settle"
    _raised(flow.on_outcome(_answer(83)), vpseal.OutcomeUnknown)


@pytest.mark.parametrize("code", [35, 7])
def test_query_pending_or_internal_is_asked_again_then_unknown(code: int) -> None:
    flow = _settling(max_retries=2)
    steps = [flow.on_outcome(_answer(code)) for _ in range(3)]
    assert _paths(steps) == [QUERY, QUERY]
    assert [s.attempt for s in steps[:2]] == [2, 3]  # type: ignore[union-attr]
    _raised(steps[-1], vpseal.OutcomeUnknown)
    flow = _settling(max_retries=2)
    flow.on_outcome(_answer(code))
    assert _done(flow.on_outcome(_found(Decimal(-1)))).amount == Decimal(1)


@pytest.mark.parametrize("code", [2, 3, 10, 11, 19, 20, 84, 999])
def test_query_other_codes_are_unknown(code: int) -> None:
    flow = _settling(max_retries=3)
    error = _raised(flow.on_outcome(_answer(code)), vpseal.OutcomeUnknown)
    assert f"code {code}" in str(error) and flow.queries == 1


def test_query_no_answer_is_asked_again_then_unknown() -> None:
    flow = _settling(max_retries=2)
    steps = [flow.on_outcome(DROP), flow.on_outcome(REFUSED), flow.on_outcome(DROP)]
    assert _paths(steps) == [QUERY, QUERY]
    error = _raised(steps[-1], vpseal.OutcomeUnknown)
    assert "the transaction query failed" in str(error) and error.__class__ is vpseal.OutcomeUnknown
    assert flow.attempts == 3  # never re-sent the cash-out


def test_query_no_answer_not_retryable_is_unknown_at_once() -> None:
    flow = _settling(max_retries=3)
    _raised(flow.on_outcome(FATAL_SENT), vpseal.OutcomeUnknown)
    assert flow.queries == 1


def test_query_retry_after_is_honoured() -> None:
    flow = _settling(max_retries=2)
    step = flow.on_outcome(NoAnswer(TransportError("503"), True, True, 1.5))
    assert isinstance(step, Send) and step.delay == 1.5


def test_query_retries_are_counted_per_settlement() -> None:
    """A re-sent cash-out that must be settled again gets its query retries afresh."""
    flow = _flow(max_retries=2)
    _drive(flow, [DROP, _answer(7)])  # settle #1 (code 7 settles at once, no re-send)
    flow.query_retries = 1
    assert isinstance(flow.on_outcome(_answer(4)), Send) and flow.phase == "cashout"
    assert isinstance(flow.on_outcome(_answer(7)), Send) and flow.query_retries == 0


def test_query_settling_queries_are_free_of_the_budget() -> None:
    budget = RetryBudget(capacity=0, cost=5)
    flow = _flow(max_retries=2, budget=budget)
    _drive(flow, [DROP])
    steps = [flow.on_outcome(DROP), flow.on_outcome(DROP)]
    assert _paths(steps) == [QUERY, QUERY]


# ------------------------------------------------------------------------------ deadline, auth


def test_deadline_before_anything_uncertain_is_deadline_exceeded() -> None:
    flow = _flow()
    flow.start()
    error = _raised(flow.on_deadline(), vpseal.DeadlineExceeded)
    assert "(last:" not in str(error)
    flow.on_outcome(REFUSED)
    error = _raised(flow.on_deadline(), vpseal.DeadlineExceeded)
    assert "connection refused" in str(error)


def test_deadline_while_uncertain_or_settling_is_unknown() -> None:
    flow = _flow()
    _drive(flow, [DROP])
    step = flow.on_deadline()
    _raised(step, vpseal.OutcomeUnknown)
    assert step.cause is DROP.error  # type: ignore[union-attr]
    flow = _flow()
    _drive(flow, [_answer(3)])  # settling, not uncertain
    step = flow.on_deadline()
    _raised(step, vpseal.OutcomeUnknown)
    assert step.cause is None  # type: ignore[union-attr]


def test_auth_failure_before_anything_uncertain_is_the_error() -> None:
    flow = _flow()
    flow.start()
    error = vpseal.AuthenticationFailed("no")
    assert _raised(flow.on_auth_failure(error), vpseal.AuthenticationFailed) is error


def test_auth_failure_while_uncertain_is_unknown() -> None:
    flow = _flow(max_retries=0)
    _drive(flow, [DROP])
    step = flow.on_auth_failure(vpseal.AuthenticationFailed("no"))
    error = _raised(step, vpseal.OutcomeUnknown)
    assert "could not obtain a token" in str(error)


# ------------------------------------------------------------------------------ SimpleFlow


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_simple_flow_retries_exactly_max_retries_times(max_retries: int) -> None:
    from vpseal._client_core import SimpleFlow

    flow: SimpleFlow[Any] = SimpleFlow(
        "/p", {"transId": "T"}, RetryPolicy(max_retries=max_retries, backoff_base=0), dict, True
    )
    steps: list[Any] = [flow.start()]
    while isinstance(steps[-1], Send):
        steps.append(flow.on_outcome(DROP))
    assert [s.attempt for s in steps[:-1]] == list(range(1, max_retries + 2))
    assert _raised(steps[-1], TransportError) is DROP.error
    assert flow.retries == max_retries and flow.trans_id == "T"


def test_simple_flow_renews_once_and_earns_only_at_once() -> None:
    from vpseal._client_core import SimpleFlow

    budget = RetryBudget(capacity=10, cost=5)
    assert budget.spend()
    policy = RetryPolicy(max_retries=2, backoff_base=0)
    flow: SimpleFlow[Any] = SimpleFlow("/p", {}, policy, lambda e: e.data, True, budget)
    assert flow.trans_id is None
    flow.start()
    step = flow.on_outcome(_answer(83))
    assert isinstance(step, Send) and step.renew_token
    _raised(flow.on_outcome(_answer(83)), vpseal.AuthenticationFailed)
    flow = SimpleFlow("/p", {}, policy, lambda e: e.data, True, budget)
    flow.start()
    assert isinstance(flow.on_outcome(_answer(0, {"x": 1})), Done)
    assert repr(budget) == "RetryBudget(6/10)"
    flow = SimpleFlow("/p", {}, policy, lambda e: e.data, False, budget)
    flow.start()
    _raised(flow.on_outcome(_answer(83)), vpseal.AuthenticationFailed)  # /v2/auth: no renewal
    assert "deadline" in str(flow.on_deadline().error)
