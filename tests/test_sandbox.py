"""The sandbox as a server: raw HTTP requests sealed with vpseal, checked byte by byte."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import vpseal
from vpseal.sandbox import Agent, FaultRule, Ledger, Sandbox, from_micros, to_micros

pytest_plugins = ["_sandbox_helpers"]

MakeSandbox = Callable[..., Sandbox]
CASHOUT = "/v2/members/cashout"
QUERY = "/v2/members/check/transactions"


class Raw:
    """A hand-driven client: seal, send, and read the envelope as raw JSON."""

    def __init__(self, sandbox: Sandbox, agent_id: str | None = None) -> None:
        self.sandbox = sandbox
        cfg = sandbox.config
        self.creds = vpseal.Credentials(agent_id or cfg.agent_id, cfg.api_key, cfg.scheme)
        self.http = httpx.Client(base_url=sandbox.base_url)
        self.token: str | None = None

    def post(
        self, path: str, payload: dict[str, Any] | bytes, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        sealed = vpseal.seal_request(self.creds, payload)
        headers = {**sealed.headers, **kw.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.post(path, content=kw.pop("body", sealed.body), headers=headers)

    def auth(self, secret: str | None = None) -> dict[str, Any]:
        payload = {"agentId": self.creds.agent_id, "secret": secret or self.sandbox.config.secret}
        doc: dict[str, Any] = self.post("/v2/auth", payload).json()
        if doc["code"] == 0:
            self.token = doc["data"]["accessToken"]
        return doc

    def call(self, path: str, payload: dict[str, Any] | bytes, **kw: Any) -> dict[str, Any]:
        response = self.post(path, payload, token=kw.pop("token", self.token), **kw)
        assert response.status_code == 200
        doc: dict[str, Any] = json.loads(response.content, parse_float=Decimal)
        assert set(doc) <= {"code", "message", "data", "logUUID"}
        assert uuid.UUID(doc["logUUID"]).version == 4
        return doc


@pytest.fixture
def raw(sandbox: Sandbox) -> Raw:
    r = Raw(sandbox)
    assert r.auth()["code"] == 0
    return r


def test_auth_answer_has_a_bearer_token_and_expiry(sandbox: Sandbox) -> None:
    doc = Raw(sandbox).auth()
    assert (doc["code"], doc["message"]) == (0, "No error.")
    data = doc["data"]
    assert data["tokenType"] == "Bearer" and data["expiresIn"] == 3600
    assert re.fullmatch(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", data["accessToken"])


def test_cashout_answer_is_the_seed_envelope_with_exact_numbers(
    sandbox: Sandbox, raw: Raw
) -> None:
    sandbox.set_member("player001", "2323.582")
    response = raw.post(CASHOUT, {"username": "player001", "transId": "C-1"}, token=raw.token)
    text = response.text
    assert response.headers["content-type"] == "application/json"
    assert re.fullmatch(
        r'\{"code":0,"message":"No error\.","data":\{"amount":2323\.582,"balance":0\},'
        r'"logUUID":"[0-9a-f-]{36}"\}',
        text,
    ), text


def test_query_answer_matches_the_seed(sandbox: Sandbox, raw: Raw) -> None:
    sandbox.set_member("VPSysDevTest001", "0.000001")
    raw.call(CASHOUT, {"username": "VPSysDevTest001", "transId": "ThisisaTestTrans0014"})
    doc = raw.call(QUERY, {"username": "VPSysDevTest001", "transId": "ThisisaTestTrans0014"})
    data = doc["data"]
    assert list(data) == ["agent", "transId", "transactionTime", "amount", "username"]
    assert data["amount"] == Decimal("-0.000001") and data["agent"] == sandbox.config.agent_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["transactionTime"])


def test_every_response_has_a_fresh_log_uuid(sandbox: Sandbox, raw: Raw) -> None:
    seen = {raw.call(QUERY, {"username": "x", "transId": "y"})["logUUID"] for _ in range(5)}
    assert len(seen) == 5


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        ("no-token", 83),
        ("bad-token", 83),
        ("bad-signature", 83),
        ("wrong-key", 84),
        ("not-cipher-body", 11),
        ("missing-field", 11),
        ("not-json-plaintext", 11),
        ("bad-nonce", 11),
    ],
)
def test_request_rejections(sandbox: Sandbox, raw: Raw, mutate: str, code: int) -> None:
    sandbox.set_member("u", 5)
    payload: dict[str, Any] | bytes = {"username": "u", "transId": "R"}
    kw: dict[str, Any] = {}
    if mutate == "no-token":
        kw["token"] = None
    elif mutate == "bad-token":
        kw["token"] = (raw.token or "")[:-2] + "AA"
    elif mutate == "bad-signature":
        kw["headers"] = {"x-signature": "0" * 64}
    elif mutate == "wrong-key":
        raw.creds = vpseal.Credentials(raw.creds.agent_id, "ef" * 32)
    elif mutate == "not-cipher-body":
        kw["body"] = b'{"plain": "text"}'
    elif mutate == "missing-field":
        payload = {"username": "u"}
    elif mutate == "not-json-plaintext":
        payload = b"not json"
    elif mutate == "bad-nonce":
        kw["headers"] = {"x-nonce": "XYZ"}
    doc = raw.call(CASHOUT, payload, **kw)
    assert (doc["code"], doc["message"]) == (code, vpseal.api_errors.MESSAGES[code])
    assert "data" not in doc
    assert sandbox.balance("u") == Decimal(5)


def test_replayed_request_is_code_83(sandbox: Sandbox, raw: Raw) -> None:
    sandbox.set_member("v", 0)
    sealed = vpseal.seal_request(raw.creds, {"username": "v", "transId": "RP"})
    headers = {**sealed.headers, "Authorization": f"Bearer {raw.token}"}
    first = raw.http.post(CASHOUT, content=sealed.body, headers=headers).json()
    second = raw.http.post(CASHOUT, content=sealed.body, headers=headers).json()
    assert (first["code"], second["code"]) == (2, 83)


def test_expired_token_is_code_83(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(token_ttl=0.2)
    raw = Raw(sandbox)
    assert raw.auth()["data"]["expiresIn"] == 0.2
    assert raw.call(QUERY, {"username": "x", "transId": "y"})["code"] == 8
    time.sleep(0.3)
    assert raw.call(QUERY, {"username": "x", "transId": "y"})["code"] == 83


def test_token_of_one_agent_is_refused_for_another(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(
        extra_agents=[Agent("agent-b", "0123456789abcdef" * 4, "secret-b")]
    )
    a = Raw(sandbox)
    a.auth()
    b = Raw(sandbox, "agent-b")
    b.creds = vpseal.Credentials("agent-b", "0123456789abcdef" * 4)
    assert b.auth(secret="secret-b")["code"] == 0
    assert b.call(QUERY, {"username": "x", "transId": "y"}, token=a.token)["code"] == 83


def test_transactions_are_scoped_to_their_agent(make_sandbox: MakeSandbox) -> None:
    key_b = "0123456789abcdef" * 4
    sandbox = make_sandbox(extra_agents=[Agent("agent-b", key_b, "secret-b")])
    sandbox.set_member("same-name", 3)
    sandbox.set_member("same-name", 4, agent="agent-b")
    a, b = Raw(sandbox), Raw(sandbox, "agent-b")
    b.creds = vpseal.Credentials("agent-b", key_b)
    a.auth()
    b.auth(secret="secret-b")
    assert a.call(CASHOUT, {"username": "same-name", "transId": "T"})["data"]["amount"] == 3
    assert b.call(QUERY, {"username": "same-name", "transId": "T"})["code"] == 4
    assert b.call(CASHOUT, {"username": "same-name", "transId": "T"})["data"]["amount"] == 4


def test_auth_errors(sandbox: Sandbox) -> None:
    raw = Raw(sandbox)
    assert raw.auth(secret="nope")["code"] == 83
    assert Raw(sandbox, "unknown-agent").auth()["code"] == 10
    doc = raw.post("/v2/auth", {"agentId": raw.creds.agent_id}).json()
    assert doc["code"] == 11


def test_http_level_errors(sandbox: Sandbox, raw: Raw) -> None:
    assert raw.http.post("/v2/elsewhere", content=b"{}").status_code == 404
    assert raw.http.get(CASHOUT).status_code == 405


# ------------------------------------------------------------------------------ admin


def test_admin_endpoints(sandbox: Sandbox) -> None:
    http = httpx.Client(base_url=sandbox.base_url)
    ok = http.post("/_admin/members", json=[{"username": "p", "balance": "12.345678"},
                                             {"username": "q", "balance": 1}])  # fmt: skip
    assert ok.json() == {"ok": True, "members": 2}
    assert http.post("/_admin/members", content=b'{"username": "r", "balance": 1.5}').json()[
        "ok"
    ]  # a JSON number is parsed as Decimal, never float
    assert sandbox.balance("r") == Decimal("1.5")
    too_fine = {"username": "s", "balance": "0.0000001"}
    assert http.post("/_admin/members", json=too_fine).status_code == 400
    member = http.get("/_admin/members/p").json()
    assert member["balance"] == 12.345678 and member["transactions"][0]["kind"] == "adjust"
    assert http.get("/_admin/members/nobody").status_code == 404
    ledger = json.loads(http.get("/_admin/ledger?detail=1").content, parse_float=Decimal)
    assert ledger["balance_total"] == Decimal("14.845678") and ledger["conserved"] is True
    assert len(ledger["transactionList"]) == 3
    faults = http.post("/_admin/faults", json={"kind": "drop", "probability": 0.5}).json()
    assert faults["rules"][0]["kind"] == "drop" and faults["rules"][0]["phase"] == "after"
    assert http.post("/_admin/faults?mode=add", json=[{"kind": "code"}]).json()["rules"][1][
        "code"
    ] == 20
    assert http.post("/_admin/faults", json={"kind": "explode"}).status_code == 400
    assert http.delete("/_admin/faults").json() == {"rules": []}
    assert http.post("/_admin/tokens/revoke").json() == {"ok": True}
    stats = http.get("/_admin/stats").json()  # admin requests are not API requests
    assert stats.pop("connections") >= 1 and stats == {}


# ------------------------------------------------------------------------------ ledger


def test_money_is_exact() -> None:
    assert to_micros("2323.582") == 2_323_582_000
    assert to_micros(Decimal("0.000001")) == 1 and to_micros(7) == 7_000_000
    assert str(from_micros(2_323_582_000)) == "2323.582" and str(from_micros(0)) == "0"
    assert str(from_micros(100_000_000)) == "100"
    for bad in ("0.0000001", 1.5, "NaN", "abc"):
        with pytest.raises(ValueError):
            to_micros(bad)  # type: ignore[arg-type]


def test_a_failure_inside_a_cashout_leaves_nothing_half_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    ledger.set_member("a", "m", 5_000_000)
    import vpseal.sandbox.ledger as ledger_module

    def crash(*args: object) -> None:
        raise RuntimeError("power cut between the UPDATE and the INSERT")

    monkeypatch.setattr(ledger_module, "_insert", crash)
    with pytest.raises(RuntimeError):
        ledger.cashout("a", "m", "T")
    monkeypatch.undo()
    assert ledger.member("a", "m") == (5_000_000, False)
    assert ledger.find("a", "T") is None and ledger.totals()["conserved"] is True
    assert ledger.cashout("a", "m", "T").code == 0
    ledger.close()


class _FailingCommit:
    """A connection whose next COMMIT fails (a full disk, an I/O error), all else passed on."""

    def __init__(self, conn: sqlite3.Connection, switch: list[bool]) -> None:
        self._conn, self._switch = conn, switch

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and self._switch and self._switch.pop():
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_failed_commit_is_rolled_back_and_the_connection_reusable(tmp_path: Path) -> None:
    switch: list[bool] = []

    class Flaky(Ledger):
        def _new_connection(self) -> sqlite3.Connection:
            return _FailingCommit(super()._new_connection(), switch)  # type: ignore[return-value]

    ledger = Flaky(tmp_path / "l.sqlite3", pool_size=1)
    ledger.set_member("a", "m", 5_000_000)
    switch.append(True)
    with pytest.raises(sqlite3.OperationalError):
        ledger.cashout("a", "m", "T")
    # the pooled connection is not stuck inside the failed transaction
    assert ledger.member("a", "m") == (5_000_000, False) and ledger.find("a", "T") is None
    assert ledger.cashout("a", "m", "T").code == 0 and ledger.member("a", "m") == (0, False)
    assert ledger.totals()["conserved"] is True
    ledger.close()


def test_ledger_persists_across_restarts(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.sqlite3")
    with Sandbox(db=db, members={"w": "8.8"}) as first, vpseal.Client(
        **first.client_kwargs()
    ) as c:
        result = c.cashout("w", "P-1")
    with Sandbox(db=db) as second:
        assert second.balance("w") == 0
        with vpseal.Client(**second.client_kwargs()) as c:
            assert c.cashout("w", "P-1").amount == result.amount == Decimal("8.8")
            assert c.check_transaction("w", "P-1").amount == Decimal("-8.8")
    assert Path(db).exists()


def test_fault_rule_parsing() -> None:
    rule = FaultRule.parse("delay:seconds=1.5,count=3,phase=after,paths=/v2/auth+" + QUERY)
    assert (rule.kind, rule.seconds, rule.count, rule.phase) == ("delay", 1.5, 3, "after")
    assert rule.paths == ("/v2/auth", QUERY)
    assert FaultRule.parse("drop:p=0.25").probability == 0.25
    assert FaultRule.parse("code").code == 20 and FaultRule.parse("code").phase == "before"
    for bad in ("explode", "drop:p=2", "drop:phase=never", "drop:oops", "http_error:status=200"):
        with pytest.raises(ValueError):
            FaultRule.parse(bad)


def test_fault_count_limits_firing(sandbox: Sandbox, raw: Raw) -> None:
    sandbox.set_member("z", 0)
    rule = sandbox.add_fault(FaultRule("code", code=20, count=2))
    codes = [raw.call(CASHOUT, {"username": "z", "transId": f"F{i}"})["code"] for i in range(4)]
    assert codes == [20, 20, 2, 2] and rule.fired == 2
