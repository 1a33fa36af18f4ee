"""The synchronous client against the sandbox over real HTTP on loopback."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

import vpseal
from vpseal.sandbox import FaultRule, Sandbox

MakeSandbox = Callable[..., Sandbox]
QUERY = "/v2/members/check/transactions"
FAST: dict[str, Any] = {"timeout": 2.0, "max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05}

pytest_plugins = ["_sandbox_helpers"]


def test_cashout_withdraws_everything_and_returns_decimals(
    sandbox: Sandbox, client: vpseal.Client
) -> None:
    sandbox.set_member("alice", "2323.582")
    result = client.cashout("alice", "CASHOUT-20250129-001")
    assert result == vpseal.CashoutResult(
        "CASHOUT-20250129-001", Decimal("2323.582"), Decimal("0"), result.log_uuid
    )
    assert isinstance(result.amount, Decimal) and isinstance(result.balance, Decimal)
    assert uuid.UUID(result.log_uuid).version == 4
    assert sandbox.balance("alice") == Decimal("0")
    [tx] = [t for t in sandbox.transactions("alice") if t.kind == "cashout"]
    assert (tx.trans_id, tx.kind, tx.amount) == ("CASHOUT-20250129-001", "cashout", -2323582000)


def test_cashout_generates_a_trans_id_when_none_is_given(
    sandbox: Sandbox, client: vpseal.Client
) -> None:
    sandbox.set_member("bob", "0.000001")
    result = client.cashout("bob")
    assert re.fullmatch(r"[0-9a-f]{32}", result.trans_id)
    assert result.amount == Decimal("0.000001")
    assert [t.trans_id for t in sandbox.transactions("bob") if t.kind == "cashout"] == [
        result.trans_id
    ]


def test_repeated_trans_id_returns_the_same_result_without_a_second_withdrawal(
    sandbox: Sandbox, client: vpseal.Client
) -> None:
    sandbox.set_member("carol", 100)
    first = client.cashout("carol", "T-1")
    sandbox.set_member("carol", 50)  # a deposit after the cash-out
    again = client.cashout("carol", "T-1")
    assert (again.trans_id, again.amount, again.balance) == ("T-1", Decimal(100), Decimal(0))
    assert again.log_uuid != first.log_uuid
    assert sandbox.balance("carol") == Decimal(50)  # the repeat took nothing
    assert sandbox.totals()["cashouts"] == 1


def test_check_transaction_reports_the_withdrawal(sandbox: Sandbox, client: vpseal.Client) -> None:
    sandbox.set_member("dave", "12.5")
    before = datetime.now(timezone.utc)
    client.cashout("dave", "Q-1")
    tx = client.check_transaction("dave", "Q-1")
    assert (tx.agent, tx.trans_id, tx.username, tx.amount) == (
        sandbox.config.agent_id, "Q-1", "dave", Decimal("-12.5"),
    )  # fmt: skip
    assert tx.transaction_time.tzinfo is timezone.utc
    assert before - timedelta(seconds=1) <= tx.transaction_time <= datetime.now(timezone.utc)


# ------------------------------------------------------------------------------ error codes


def test_zero_balance_is_code_2(sandbox: Sandbox, client: vpseal.Client) -> None:
    sandbox.set_member("erin", 0)
    with pytest.raises(vpseal.BalanceNotEnough) as info:
        client.cashout("erin")
    assert (info.value.code, info.value.message) == (2, "The balance is not enough.")
    assert uuid.UUID(info.value.log_uuid or "").version == 4


def test_balance_is_zero_right_after_a_cashout_so_the_next_is_code_2(
    sandbox: Sandbox, client: vpseal.Client
) -> None:
    sandbox.set_member("frank", 7)
    client.cashout("frank")
    with pytest.raises(vpseal.BalanceNotEnough):
        client.cashout("frank")


def test_trans_id_of_another_member_is_code_3(sandbox: Sandbox, client: vpseal.Client) -> None:
    sandbox.set_member("gina", 1)
    sandbox.set_member("hank", 1)
    client.cashout("gina", "SHARED")
    with pytest.raises(vpseal.TransactionExists) as info:
        client.cashout("hank", "SHARED")
    assert info.value.message == "The transaction already exist."
    assert sandbox.balance("hank") == Decimal(1)


def test_code_3_on_a_first_attempt_is_settled_by_the_query(make_sandbox: MakeSandbox) -> None:
    """A server that answers a repeated transId with code 3: repeating a cash-out (as
    OutcomeUnknown advises) still reports it, from the query, and takes nothing more."""
    sandbox = make_sandbox(repeat="code-3", members={"ivy": 5})
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as client:
        first = client.cashout("ivy", "R-1")
        sandbox.set_member("ivy", 3)  # a deposit after the cash-out
        again = client.cashout("ivy", "R-1")
    assert (again.trans_id, again.amount, again.balance) == ("R-1", Decimal(5), Decimal(0))
    assert again.settled_by_query and not first.settled_by_query
    assert sandbox.balance("ivy") == Decimal(3) and sandbox.totals()["cashouts"] == 1
    stats = sandbox.stats()
    assert (stats["requests /v2/members/cashout"], stats["requests " + QUERY]) == (2, 1)


def test_code_3_for_a_trans_id_that_is_not_this_members_withdrawal_raises(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(repeat="code-3", members={"jo": 2, "kay": 2})
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as client:
        client.cashout("jo", "JO-1")
        with pytest.raises(vpseal.TransactionExists):
            client.cashout("kay", "JO-1")  # jo's transaction: the query for kay finds none
        [adjust] = [t.trans_id for t in sandbox.transactions("kay") if t.kind == "adjust"]
        with pytest.raises(vpseal.TransactionExists):
            client.cashout("kay", adjust)  # a deposit holds this transId
    assert sandbox.balance("kay") == Decimal(2) and sandbox.totals()["cashouts"] == 1
    stats = sandbox.stats()  # one cash-out and one query each: never re-sent
    assert (stats["requests /v2/members/cashout"], stats["requests " + QUERY]) == (3, 2)


def test_unknown_transaction_is_code_4(sandbox: Sandbox, client: vpseal.Client) -> None:
    sandbox.set_member("jack", 1)
    with pytest.raises(vpseal.TransactionNotFound) as info:
        client.check_transaction("jack", "never-made")
    assert info.value.message == "The transaction doesn't exist."


def test_unknown_member_is_code_8(sandbox: Sandbox, client: vpseal.Client) -> None:
    with pytest.raises(vpseal.MemberNotFound) as info:
        client.cashout("nobody")
    assert info.value.message == "The member does not exist."
    with pytest.raises(vpseal.MemberNotFound):
        client.check_transaction("nobody", "x")


@pytest.mark.parametrize(("username", "trans_id"), [("", "T"), ("kim", ""), ("kim", "x" * 65)])
def test_invalid_fields_are_code_11(
    sandbox: Sandbox, client: vpseal.Client, username: str, trans_id: str
) -> None:
    sandbox.set_member("kim", 3)
    with pytest.raises(vpseal.ParametersError) as info:
        client.cashout(username, trans_id)
    assert info.value.message == "Parameters error"
    assert sandbox.balance("kim") == Decimal(3)


def test_blocked_member_is_code_19(sandbox: Sandbox, client: vpseal.Client) -> None:
    sandbox.set_member("lou", 9, blocked=True)
    with pytest.raises(vpseal.InvalidAccount) as info:
        client.cashout("lou")
    assert info.value.message == "Invalid account"
    assert sandbox.balance("lou") == Decimal(9)


def test_wallet_locked_is_code_20_and_nothing_happens(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lock_hold=0.5, members={"mia": 4})
    kwargs = sandbox.client_kwargs()
    with vpseal.Client(**kwargs, **FAST) as first, vpseal.Client(
        **kwargs, timeout=2.0, max_retries=0
    ) as second:
        first.authenticate()
        second.authenticate()
        holder = threading.Thread(target=first.cashout, args=("mia", "HOLDER"))
        holder.start()
        time.sleep(0.15)
        with pytest.raises(vpseal.WalletLocked) as info:
            second.cashout("mia", "OTHER")
        holder.join()
    assert info.value.message == "Member wallet is temporarily locked, please try again later."
    assert [t.trans_id for t in sandbox.transactions("mia") if t.kind == "cashout"] == ["HOLDER"]


def test_code_20_is_retried_until_the_wallet_is_free(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lock_hold=0.3, members={"ned": 4, "ola": 0})
    kwargs = sandbox.client_kwargs()
    with vpseal.Client(**kwargs, timeout=2.0, max_retries=8, backoff_base=0.1) as c:
        c.authenticate()
        holder = threading.Thread(target=c.cashout, args=("ned", "HOLD"))
        holder.start()
        time.sleep(0.1)
        with pytest.raises(vpseal.BalanceNotEnough):
            c.cashout("ned", "LATER")  # retried past the lock; then the balance is gone
        holder.join()
    assert sandbox.stats().get("code 20", 0) >= 1


def test_pending_transaction_is_code_35(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(lock_hold=0.5, members={"pia": 4})
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as c:
        c.authenticate()
        holder = threading.Thread(target=c.cashout, args=("pia", "P-1"))
        holder.start()
        time.sleep(0.15)
        with pytest.raises(vpseal.TransactionPending) as info:
            c.check_transaction("pia", "P-1")
        holder.join()
        assert c.check_transaction("pia", "P-1").amount == Decimal(-4)
    assert info.value.message == "The transaction is pending"


def test_internal_error_code_7_from_the_query(sandbox: Sandbox, client: vpseal.Client) -> None:
    sandbox.set_member("quin", 1)
    sandbox.add_fault(FaultRule("code", code=7, count=1, paths=("/v2/members/check/transactions",)))
    with pytest.raises(vpseal.InternalServerError) as info:
        client.check_transaction("quin", "x")
    assert info.value.message == "Internal server error"


def test_unknown_agent_is_code_10(sandbox: Sandbox) -> None:
    kwargs = {**sandbox.client_kwargs(), "agent_id": "no-such-agent"}
    with vpseal.Client(**kwargs, **FAST) as c, pytest.raises(vpseal.AgentNotFound) as info:
        c.cashout("anyone")
    assert info.value.message == "Agent code was not found or block"


def test_wrong_secret_is_code_83(sandbox: Sandbox) -> None:
    kwargs = {**sandbox.client_kwargs(), "secret": "wrong"}
    with vpseal.Client(**kwargs, **FAST) as c, pytest.raises(vpseal.AuthenticationFailed) as info:
        c.cashout("anyone")
    assert info.value.message == "Authentication Failed"


def test_wrong_api_key_is_code_84(sandbox: Sandbox) -> None:
    kwargs = {**sandbox.client_kwargs(), "api_key": "ab" * 32}
    with vpseal.Client(**kwargs, **FAST) as c, pytest.raises(vpseal.DecryptionFailed) as info:
        c.authenticate()
    assert info.value.message == "Decryption Failed"


def test_pipe_scheme_is_refused_by_a_transfer_server_with_83(sandbox: Sandbox) -> None:
    with (
        vpseal.Client(**sandbox.client_kwargs(), scheme="pipe", **FAST) as c,
        pytest.raises(vpseal.AuthenticationFailed),
    ):
        c.authenticate()


def test_pipe_scheme_end_to_end(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(scheme="pipe", members={"rex": "1.5"})
    with vpseal.Client(**sandbox.client_kwargs(), scheme="pipe", **FAST) as c:
        assert c.cashout("rex").amount == Decimal("1.5")


def test_api_error_subclasses_cover_spec_codes() -> None:
    from vpseal.api_errors import ERRORS_BY_CODE, from_response

    assert sorted(ERRORS_BY_CODE) == [2, 3, 4, 7, 8, 10, 11, 19, 20, 35, 83, 84]
    unknown = from_response(999, "odd", "u-1")
    assert type(unknown) is vpseal.APIError and (unknown.code, unknown.log_uuid) == (999, "u-1")
    assert "999" in str(unknown) and "u-1" in str(unknown)


# ------------------------------------------------------------------------------ tokens


def test_token_is_cached_across_calls(sandbox: Sandbox, client: vpseal.Client) -> None:
    sandbox.set_member("sam", 1)
    client.cashout("sam")
    for _ in range(3):
        with pytest.raises(vpseal.TransactionNotFound):
            client.check_transaction("sam", "nope")
    assert sandbox.stats()["requests /v2/auth"] == 1


def test_token_is_renewed_ahead_of_expiry(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(token_ttl=1.0, members={"tia": 1})
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as c:
        c.authenticate()
        time.sleep(0.95)  # inside the renewal margin (a tenth of expiresIn), not yet expired
        c.cashout("tia")
        time.sleep(1.1)  # past expiry
        with pytest.raises(vpseal.TransactionNotFound):
            c.check_transaction("tia", "none")
    stats = sandbox.stats()
    assert stats["requests /v2/auth"] == 3
    assert stats.get("code 83", 0) == 0  # never sent an expired token


def test_refused_token_is_renewed_once_and_the_call_resent(
    sandbox: Sandbox, client: vpseal.Client
) -> None:
    sandbox.set_member("uma", "3.25")
    client.authenticate()
    sandbox.revoke_tokens()
    assert client.cashout("uma").amount == Decimal("3.25")
    stats = sandbox.stats()
    assert (stats["requests /v2/auth"], stats["code 83"]) == (2, 1)


def test_second_83_is_raised_and_nothing_is_withdrawn(
    sandbox: Sandbox, client: vpseal.Client
) -> None:
    sandbox.set_member("vic", 2)
    sandbox.add_fault(FaultRule("code", code=83, count=2))
    with pytest.raises(vpseal.AuthenticationFailed):
        client.cashout("vic")
    assert sandbox.stats()["requests /v2/auth"] == 2
    assert sandbox.balance("vic") == Decimal(2)


def test_token_fetch_is_single_flight_across_threads(
    sandbox: Sandbox, client: vpseal.Client
) -> None:
    sandbox.set_member("wes", 1)
    barrier = threading.Barrier(24)
    errors: list[BaseException] = []

    def query() -> None:
        barrier.wait()
        try:
            client.check_transaction("wes", "none")
        except vpseal.TransactionNotFound:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def run_all() -> None:
        threads = [threading.Thread(target=query) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run_all()
    assert errors == [] and sandbox.stats()["requests /v2/auth"] == 1
    sandbox.revoke_tokens()
    run_all()  # every thread sees 83 with the same token: one renewal for all
    assert errors == [] and sandbox.stats()["requests /v2/auth"] == 2


# ------------------------------------------------------------------------------ configuration


def test_configuration_from_the_environment(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.set_member("xia", 1)
    for name, value in sandbox.client_env().items():
        monkeypatch.setenv(name, value)
    with vpseal.Client() as c:
        assert c.cashout("xia").amount == Decimal(1)


@pytest.mark.parametrize(
    "missing", ["VPSEAL_BASE_URL", "VPSEAL_AGENT_ID", "VPSEAL_API_KEY", "VPSEAL_SECRET"]
)
def test_missing_setting_raises_config_error_naming_it(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    for name, value in sandbox.client_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(missing)
    with pytest.raises(vpseal.ConfigError, match=missing):
        vpseal.Client()
    with pytest.raises(vpseal.ConfigError, match=missing):
        vpseal.AsyncClient()


def test_malformed_api_key_fails_before_any_request(sandbox: Sandbox) -> None:
    kwargs = {**sandbox.client_kwargs(), "api_key": "not-hex"}
    with pytest.raises(vpseal.ConfigError):
        vpseal.Client(**kwargs)
    assert sandbox.stats() == {}


def test_repr_hides_secrets(sandbox: Sandbox, client: vpseal.Client) -> None:
    text = repr(client) + str(client)
    assert sandbox.config.api_key not in text and sandbox.config.secret not in text
    assert "hidden" in text and sandbox.config.agent_id in text


def test_user_supplied_http_client_is_used_and_left_open(sandbox: Sandbox) -> None:
    sandbox.set_member("yan", 2)
    seen: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda r: seen.append(r.url.path)]})
    with vpseal.Client(**sandbox.client_kwargs(), http_client=http) as c:
        assert c.cashout("yan").amount == Decimal(2)
    assert seen == ["/v2/auth", "/v2/members/cashout"]
    assert not http.is_closed
    http.close()


def test_connection_refused_is_a_transport_error_not_an_unknown_outcome() -> None:
    with vpseal.Client(
        "http://127.0.0.1:9", agent_id="a", api_key="00" * 32, secret="s", **FAST
    ) as c, pytest.raises(vpseal.TransportError):
        c.cashout("anyone")


# ------------------------------------------------------------------------------ logging


def test_logs_name_path_code_and_log_uuid_but_never_secrets(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.set_member("zoe-secret-name", "5")
    caplog.set_level(logging.DEBUG, logger="vpseal")
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as c:
        result = c.cashout("zoe-secret-name", "TRANS-LOGGED")
        token = c._tokens.get()
    assert token is not None
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("vpseal"))
    assert "/v2/members/cashout" in text and result.log_uuid in text and "code=0" in text
    for secret in (
        sandbox.config.api_key, sandbox.config.secret, token[0],
        "zoe-secret-name", "TRANS-PLAINTEXT", "cipherText",
    ):  # fmt: skip
        assert secret not in text


# ------------------------------------------------------------------------------ retries


def test_each_attempt_is_sealed_afresh_with_the_same_trans_id(sandbox: Sandbox) -> None:
    sandbox.set_member("ret", 2)
    sandbox.add_fault(FaultRule("code", code=20, count=2))
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    with vpseal.Client(**sandbox.client_kwargs(), http_client=http, **FAST) as c:
        assert c.cashout("ret", "SAME").attempts == 3
    http.close()
    cashouts = [r for r in sent if r.url.path == "/v2/members/cashout"]
    creds = vpseal.Credentials(sandbox.config.agent_id, sandbox.config.api_key)
    guard = vpseal.ReplayGuard()  # each attempt is a fresh request: none is a replay
    opened = [vpseal.open_request(creds, dict(r.headers), r.content, guard=guard) for r in cashouts]
    assert [o.payload for o in opened] == [{"username": "ret", "transId": "SAME"}] * 3
    assert len({r.headers["x-nonce"] for r in cashouts}) == 3
    assert len({r.headers["x-signature"] for r in cashouts}) == 3
    assert len({r.content for r in cashouts}) == 3  # fresh IV each time
    assert all(r.headers["authorization"].startswith("Bearer ") for r in cashouts)


def test_backoff_grows_exponentially_with_jitter() -> None:
    from vpseal._client_core import RetryPolicy

    policy = RetryPolicy(max_retries=5, backoff_base=0.1, backoff_max=1.0)
    low = [policy.delay(n, rand=lambda: 0.0) for n in (1, 2, 3, 4, 5)]
    high = [policy.delay(n, rand=lambda: 1.0) for n in (1, 2, 3, 4, 5)]
    assert low == [0.05, 0.1, 0.2, 0.4, 0.5]
    assert high == [0.1, 0.2, 0.4, 0.8, 1.0]
    # A server's Retry-After is a minimum, capped by retry_after_max (30 s by default).
    assert policy.delay(1, 7.0, rand=lambda: 1.0) == 7.0
    assert policy.delay(5, 0.2, rand=lambda: 1.0) == 1.0
    assert policy.delay(1, 10_000.0, rand=lambda: 0.0) == 30.0
    assert policy.delay(10**9, rand=lambda: 1.0) == 1.0  # no giant exponent
    for bad in ({"max_retries": -1}, {"max_retries": 101}, {"backoff_base": float("nan")},
                {"backoff_max": -1.0}, {"retry_after_max": 1e9}):  # fmt: skip
        with pytest.raises(vpseal.ConfigError):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def test_token_cache_renews_a_tenth_ahead_and_tracks_generations() -> None:
    from vpseal._client_core import Token, TokenCache

    now = [100.0]
    cache = TokenCache(clock=lambda: now[0])
    assert cache.get() is None
    assert cache.store(Token("t1", 3600)) == ("t1", 1)
    now[0] += 3600 - 61
    assert cache.get() == ("t1", 1)
    assert cache.get(stale=1) is None  # refused: the caller must renew
    now[0] += 2  # within a minute of expiry
    assert cache.get() is None
    assert cache.store(Token("t2", 10)) == ("t2", 2)
    now[0] += 8.9
    assert cache.get(stale=1) == ("t2", 2)  # another caller already renewed
    now[0] += 0.2
    assert cache.get() is None and "t2" not in repr(cache)


def test_no_secret_token_or_plaintext_in_any_log_line_or_error(
    make_sandbox: MakeSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Every logger at DEBUG (httpx, httpcore, the sandbox included), with tracebacks, through
    retries, a token renewal after 83, settling by query, OutcomeUnknown and API errors."""
    sandbox = make_sandbox(repeat="code-3")
    tokens: list[str] = []
    issue = sandbox.app.tokens.issue

    def recording_issue(agent_id: str) -> str:
        tokens.append(issue(agent_id))
        return tokens[-1]

    sandbox.app.tokens.issue = recording_issue  # type: ignore[method-assign]
    for name in ("plain-user-a", "plain-user-b", "plain-user-c"):
        sandbox.set_member(name, "12.5")
    sandbox.set_member("plain-user-z", 0)
    caplog.set_level(logging.DEBUG)  # the root logger: everything
    errors: list[BaseException] = []
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as c:
        sandbox.add_fault(FaultRule("drop", phase="after", count=1))
        assert c.cashout("plain-user-a", "plain-tid-a").settled_by_query  # drop, 3, query
        sandbox.revoke_tokens()
        c.cashout("plain-user-b", "plain-tid-b")  # 83, renewal
        sandbox.set_faults([FaultRule("drop", paths=("/v2/members/cashout", QUERY))])
        with pytest.raises(vpseal.OutcomeUnknown) as unknown:
            c.cashout("plain-user-c", "plain-tid-c")
        errors.append(unknown.value)
        sandbox.clear_faults()
        with pytest.raises(vpseal.BalanceNotEnough) as poor:
            c.cashout("plain-user-z", "plain-tid-z")
        errors.append(poor.value)
        with pytest.raises(vpseal.TransactionNotFound) as missing:
            c.check_transaction("plain-user-a", "plain-tid-none")
        errors.append(missing.value)
        client_text = repr(c) + str(c) + repr(c._settings) + repr(c._tokens)
    bad = {**sandbox.client_kwargs(), "secret": "plain-wrong-secret"}
    with vpseal.Client(**bad, **FAST) as c, pytest.raises(vpseal.AuthenticationFailed) as refused:
        c.authenticate()
    errors.append(refused.value)
    assert len(tokens) == 2 and sandbox.stats()["code 83"] >= 1  # first, renewed after 83
    logs = caplog.text + "\n".join(
        logging.Formatter().format(r) for r in caplog.records
    )  # messages, arguments and tracebacks
    assert "/v2/members/cashout" in logs and "attempt=2" in logs
    error_text = "".join(repr(e) + str(e) + repr(e.__cause__) for e in errors)
    secrets = [
        sandbox.config.api_key, sandbox.config.api_key.upper(), sandbox.config.secret,
        "plain-wrong-secret", *tokens,
    ]  # fmt: skip
    for secret in secrets:
        assert secret not in logs and secret not in error_text and secret not in client_text
    assert "transId=plain-tid-c" in logs  # what a support ticket needs (issue 8)
    for plaintext in ("plain-user", "cipherText", '"secret"', "agentId"):
        assert plaintext not in logs


def test_token_that_cannot_be_a_header_value_is_refused_without_being_quoted() -> None:
    """A token h11 would reject ("Illegal header value b'Bearer …'") never reaches httpx."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = {"code": 0, "message": "No error.", "logUUID": "u",
                "data": {"accessToken": "TOKEN\x00PART", "expiresIn": 60}}  # fmt: skip
        return httpx.Response(200, json=body)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with vpseal.Client(
        "http://vp.test", agent_id="a", api_key="00" * 32, secret="s", http_client=http
    ) as c, pytest.raises(vpseal.ResponseFormatError) as info:  # fmt: skip
        c.authenticate()
    assert "TOKEN" not in str(info.value)

    from vpseal._http_httpx import classify_exception

    leak = httpx.LocalProtocolError("Illegal header value b'Bearer TOKEN\\x00PART'")
    outcome = classify_exception(leak)
    assert "TOKEN" not in str(outcome.error) and not outcome.maybe_processed


@pytest.mark.parametrize("url", ["http://[::1", "http://a:b:c", "http://"])
def test_invalid_base_url_is_a_config_error(url: str) -> None:
    with pytest.raises(vpseal.ConfigError, match="VPSEAL_BASE_URL"):
        vpseal.Client(url, agent_id="a", api_key="00" * 32, secret="s")


def test_timeout_none_means_no_timeout_and_unset_keeps_a_given_clients_own() -> None:
    seen: list[dict[str, float | None]] = []
    token = {"accessToken": "t", "expiresIn": 60}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(
            200, json={"code": 0, "message": "No error.", "logUUID": "u", "data": token}
        )

    kwargs: dict[str, Any] = {"agent_id": "a", "api_key": "00" * 32, "secret": "s"}
    cases: list[dict[str, Any]] = [
        {"timeout": None, "deadline": None}, {"timeout": 3.0}, {},
        {"timeout": None, "deadline": 2.0},  # no timeout, but the call's deadline bounds it
        {"deadline": 1.0},  # the client's own 7 s, cut to the deadline
    ]  # fmt: skip
    for options in cases:
        http = httpx.Client(transport=httpx.MockTransport(handler), timeout=7.0)
        with vpseal.Client("http://vp.test", **kwargs, **options, http_client=http) as c:
            c.authenticate()
    reads = [t["read"] for t in seen]
    assert reads[:3] == [None, 3.0, 7.0]
    assert 1.9 < reads[3] <= 2.0 and 0.9 < reads[4] <= 1.0
