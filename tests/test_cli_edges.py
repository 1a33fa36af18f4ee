"""Edges of the CLI and the sandbox (issue 8, "CLI and sandbox edges"): Ctrl-C, bad sandbox
options, unreachable endpoints, implausible admin balances, over-long usernames, malformed fault
rules, a "drop" while the wallet is locked, and clients that reset their connections.

Each failure is one clear line (or one JSON object under --json), with a sensible exit status
or HTTP status, and never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import vpseal
from vpseal.cli import main
from vpseal.sandbox import (
    DEMO_API_KEY,
    DEMO_SECRET,
    FaultRule,
    LedgerOpenError,
    Sandbox,
    to_micros,
)
from vpseal.sandbox.faults import Phase

pytest_plugins = ["_sandbox_helpers"]

CASHOUT = "/v2/members/cashout"
QUERY = "/v2/members/check/transactions"
ENV_NAMES = ("VPSEAL_BASE_URL", "VPSEAL_AGENT_ID", "VPSEAL_API_KEY", "VPSEAL_SECRET")


# ------------------------------------------------------------------------------ helpers


def _run(argv: list[str]) -> int:
    """main(argv), failing the test (instead of the whole session) on an escaped Ctrl-C."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped the CLI: the user sees a traceback")


def _one_line(text: str) -> str:
    assert text.endswith("\n") and text.count("\n") == 1, text
    assert "Traceback" not in text
    return text


@pytest.fixture
def env_for(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> Sandbox:
    for name, value in sandbox.client_env().items():
        monkeypatch.setenv(name, value)
    return sandbox


@pytest.fixture
def fast_cli(monkeypatch: pytest.MonkeyPatch, fast: dict[str, Any]) -> None:
    """The commands' clients retry with test timings (the error lines are what is tested)."""
    monkeypatch.setattr("vpseal.cli.Client", functools.partial(vpseal.Client, **fast))


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """`vpseal sandbox` must stop before serving: fail instead of blocking forever."""

    def serve_forever(self: Sandbox) -> None:
        self.close()
        raise AssertionError("the sandbox started serving with a bad option")

    monkeypatch.setattr(Sandbox, "serve_forever", serve_forever)


class _Api:
    """Sealed requests straight to a sandbox (no retries, no settling)."""

    def __init__(self, sandbox: Sandbox) -> None:
        cfg = sandbox.config
        self.creds = vpseal.Credentials(cfg.agent_id, cfg.api_key, cfg.scheme)
        self.http = httpx.Client(base_url=sandbox.base_url, timeout=10.0)
        self.token: str | None = None
        doc = self.post("/v2/auth", {"agentId": cfg.agent_id, "secret": cfg.secret}).json()
        self.token = doc["data"]["accessToken"]

    def post(self, path: str, payload: dict[str, Any]) -> httpx.Response:
        sealed = vpseal.seal_request(self.creds, payload)
        headers = dict(sealed.headers)
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.http.post(path, content=sealed.body, headers=headers)

    def code(self, path: str, username: str, trans_id: str) -> int:
        code: int = self.post(path, {"username": username, "transId": trans_id}).json()["code"]
        return code


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[_Api]:
    client = _Api(sandbox)
    yield client
    client.http.close()


@pytest.fixture
def admin(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, timeout=10.0) as http:
        yield http


def _error(response: httpx.Response) -> str:
    """The one-line message of a refused admin request."""
    assert response.status_code == 400, response.text
    message: str = response.json()["error"]
    assert message and "\n" not in message and "Traceback" not in message
    return message


# ------------------------------------------------------------------------------ Ctrl-C


def test_ctrl_c_during_check_is_one_line_and_exit_130(
    env_for: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: vpseal.Client, username: str, trans_id: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(vpseal.Client, "check_transaction", interrupted)
    assert _run(["check", "alice", "T-1"]) == 130
    captured = capsys.readouterr()
    assert captured.out == "" and _one_line(captured.err) == "vpseal: interrupted\n"
    assert _run(["check", "alice", "T-1", "--json"]) == 130
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"ok": False, "error": "Interrupted", "interrupted": True}
    assert "Traceback" not in captured.err


def _cli_subprocess(option: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`vpseal ARGV` in a child process that uses the HTTP option under test."""
    code = (
        "import sys, vpseal.client; vpseal.client.default_http = sys.argv[1]; "
        "from vpseal.cli import main; sys.exit(main(sys.argv[2:]))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, option, *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


@pytest.mark.parametrize("command", ["check", "cashout"])
def test_real_sigint_while_waiting_for_the_server(
    make_sandbox: Any,
    http_option: str,
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A real SIGINT while the request is on its way: exit 130, one JSON object, no traceback;
    the reported transId of an interrupted cash-out settles it afterwards."""
    if http_option != "httpx":
        pytest.skip("pyreqwest's blocking call lets Python see SIGINT only once the answer is in")
    sandbox = make_sandbox(members={"ivy": "7.25"})
    path = QUERY if command == "check" else CASHOUT
    phase: Phase = "before" if command == "check" else "locked"
    sandbox.add_fault(FaultRule("delay", phase=phase, seconds=1.5, paths=(path,), count=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSEAL_")}
    env.update(sandbox.client_env())
    if "VPSEAL_BACKEND" in os.environ:
        env["VPSEAL_BACKEND"] = os.environ["VPSEAL_BACKEND"]
    argv = ["check", "ivy", "NEVER"] if command == "check" else ["cashout", "ivy"]
    proc = _cli_subprocess(http_option, [*argv, "--json"], env)
    try:
        deadline = time.monotonic() + 20
        while sandbox.stats().get(f"requests {path}", 0) < 1:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.01)
        time.sleep(0.2)  # in the delay
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    doc = json.loads(out, parse_float=Decimal)
    assert doc["ok"] is False and doc["interrupted"] is True
    if command == "cashout":
        assert doc["outcome"] == "unknown" and doc["error"] == "OutcomeUnknown"
        assert sandbox.wait_idle()
        for name, value in sandbox.client_env().items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        assert _run(["check", "ivy", doc["transId"], "--json"]) == 0
        assert json.loads(capsys.readouterr().out, parse_float=Decimal)["amount"] == Decimal(
            "-7.25"
        )


# ------------------------------------------------------------------------------ transport errors


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_transport_failure_names_the_base_url_and_no_secret(
    fast_cli: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _refused_url()
    monkeypatch.setenv("VPSEAL_BASE_URL", url)
    monkeypatch.setenv("VPSEAL_AGENT_ID", "agent-x")
    monkeypatch.setenv("VPSEAL_API_KEY", DEMO_API_KEY)
    monkeypatch.setenv("VPSEAL_SECRET", DEMO_SECRET)
    assert _run(["check", "alice", "T-1"]) == 4
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("vpseal: TransportError: ") and url in err
    assert _run(["check", "alice", "T-1", "--json"]) == 4
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert (doc["ok"], doc["error"], doc["baseURL"]) == (False, "TransportError", url)
    for text in (err, captured.out, captured.err):
        assert DEMO_API_KEY not in text and DEMO_SECRET not in text


def test_a_base_url_is_shown_without_its_password(
    fast_cli: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _refused_url()
    monkeypatch.setenv("VPSEAL_BASE_URL", url.replace("//", "//ops:hunter2pw@"))
    monkeypatch.setenv("VPSEAL_AGENT_ID", "agent-x")
    monkeypatch.setenv("VPSEAL_API_KEY", DEMO_API_KEY)
    monkeypatch.setenv("VPSEAL_SECRET", DEMO_SECRET)
    status = _run(["check", "alice", "T-1"])
    captured = capsys.readouterr()
    assert status in (2, 4)  # refused, or (a stricter client) a URL with a password refused
    assert "hunter2pw" not in captured.out + captured.err
    if status == 4:
        assert url in captured.err


# ------------------------------------------------------------------------------ sandbox options


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--port", "99999", "port must be 0-65535"),
        ("--port", "-1", "port must be 0-65535"),
        ("--token-ttl", "nan", "token_ttl"),
        ("--lock-hold", "inf", "lock_hold"),
        ("--member", "rich=1e30", "at most 10**12"),
        ("--member", "rich=1e999990", "at most 10**12"),
        ("--member", "x" * 65 + "=1", "64 characters"),
        ("--fault", "code:code=x", "code='x' is not a number"),
        ("--fault", "drop:phase=locked,paths=" + QUERY, "only for cash-outs"),
    ],
)
def test_bad_sandbox_options_are_one_line_and_exit_2(
    no_serving: None, capsys: pytest.CaptureFixture[str], option: str, value: str, expected: str
) -> None:
    started = time.monotonic()
    assert _run(["sandbox", "--port", "0", option, value]) == 2
    captured = capsys.readouterr()
    err = _one_line(captured.err)
    assert err.startswith("vpseal sandbox: ") and expected in err, err
    assert captured.out == "" and time.monotonic() - started < 5


@pytest.mark.parametrize("case", ["missing-directory", "a-directory", "not-a-database"])
def test_a_ledger_that_cannot_be_opened_is_one_line_and_exit_2(
    no_serving: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    if case == "missing-directory":
        db, expected = str(tmp_path / "nonexistent" / "x.db"), "does not exist"
    elif case == "a-directory":
        db, expected = str(tmp_path), "is a directory"
    else:
        db, expected = str(tmp_path / "junk.db"), "not a database"
        Path(db).write_bytes(b"this is not SQLite\n" * 100)
    assert _run(["sandbox", "--port", "0", "--db", db]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"vpseal sandbox: cannot open the ledger {db}: ") and expected in err
    with pytest.raises(LedgerOpenError, match="cannot open the ledger"):
        Sandbox(db=db)


def test_a_taken_port_is_one_line_and_exit_2(
    sandbox: Sandbox, no_serving: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["sandbox", "--port", str(sandbox.port)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"cannot listen on 127.0.0.1 port {sandbox.port}" in err


# ------------------------------------------------------------------------------ admin balances


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"username": "rich", "balance": 1e30}', "at most 10**12"),
        (b'{"username": "rich", "balance": "1e999990"}', "at most 10**12"),
        (b'{"username": "rich", "balance": 1e999990}', "at most 10**12"),
        (b'{"username": "rich", "balance": -1e999999999}', "at most 10**12"),
        (b'{"username": "rich", "balance": "1e-999999999"}', "6 decimal places"),
        (b'{"username": "rich", "balance": 1' + b"0" * 5000 + b"}", "at most 10**12"),
        (b'{"username": "rich", "balance": 0.' + b"0" * 500_000 + b"1}", "6 decimal places"),
        (b'{"username": "rich", "balance": "1000000000000.000001"}', "at most 10**12"),
        (b'{"username": "rich", "balance": "0.0000001"}', "6 decimal places"),
        (b'{"username": "rich", "balance": NaN}', "never float"),
        (b'{"username": "rich", "balance": "Infinity"}', "finite"),
        (b'{"username": "rich", "balance": "-sNaN"}', "finite"),
        (b'{"username": "rich", "balance": "-1"}', ">= 0"),
        (b'{"username": "rich", "balance": null}', "decimal number"),
        (b'{"username": "rich", "balance": true}', "never float"),
    ],
)
def test_admin_refuses_implausible_balances_quickly(
    sandbox: Sandbox, admin: httpx.Client, body: bytes, expected: str
) -> None:
    started = time.monotonic()
    message = _error(admin.post("/_admin/members", content=body))
    assert expected in message and "rich" in message
    assert time.monotonic() - started < 2.0  # no expansion of 10**999990
    assert sandbox.balance("rich") is None and sandbox.totals()["transactions"] == 0


def test_admin_takes_balances_up_to_the_bound_and_totals_stay_exact(
    sandbox: Sandbox, admin: httpx.Client
) -> None:
    members = [{"username": f"whale{i}", "balance": "1000000000000"} for i in range(12)]
    members.append({"username": "dust", "balance": "999999999999.999999"})
    assert admin.post("/_admin/members", json=members).json() == {"ok": True, "members": 13}
    totals = sandbox.totals()  # beyond SQLite's 64-bit SUM: added up exactly in Python
    assert totals["balance_total"] == Decimal("12999999999999.999999")
    assert totals["conserved"] is True and totals["members"] == 13


def test_to_micros_checks_bounds_before_any_arithmetic() -> None:
    assert to_micros("1.0000000") == 1_000_000  # trailing zeros are not decimal places
    assert to_micros(Decimal("1E+12")) == 10**18 and to_micros(-(10**12)) == -(10**18)
    assert to_micros(Decimal("0E+999999")) == 0 and to_micros("-0.000001") == -1
    started = time.monotonic()
    for bad in (Decimal("1e999999999"), Decimal("-1e999999999"), "1e999999999",
                Decimal("1e-999999999"), 10**100_000, Decimal("1000000000000.000001"),
                "9" * 65):  # fmt: skip
        with pytest.raises(ValueError):
            to_micros(bad)
    assert time.monotonic() - started < 1.0


# ------------------------------------------------------------------------------ admin usernames


def test_admin_refuses_usernames_the_api_refuses(
    sandbox: Sandbox, admin: httpx.Client, api: _Api
) -> None:
    longest = "u" * 64
    for bad in ("u" * 65, "", "   ", 7, None):
        message = _error(admin.post("/_admin/members", json={"username": bad, "balance": 1}))
        assert "username must be a string of 1 to 64 characters" in message
    assert sandbox.totals()["members"] == 0
    # a batch with one bad name writes nothing
    batch = [{"username": "fine", "balance": 1}, {"username": "u" * 65, "balance": 1}]
    _error(admin.post("/_admin/members", json=batch))
    assert sandbox.balance("fine") is None
    with pytest.raises(ValueError, match="1 to 64 characters"):
        sandbox.set_member("u" * 65, 1)
    # the same limit as the API's: 64 characters work end to end, 65 are code 11 there too
    assert admin.post("/_admin/members", json={"username": longest, "balance": 3}).json()["ok"]
    assert api.code(CASHOUT, longest, "L-1") == 0 and sandbox.balance(longest) == 0
    assert api.code(CASHOUT, "u" * 65, "L-2") == 11


# ------------------------------------------------------------------------------ fault rules


BAD_RULES: list[tuple[Any, str]] = [
    ({"kind": "code", "code": "x"}, "fault code must be an API code"),
    ({"kind": "code", "code": 1.5}, "fault code must be an API code"),
    ({"kind": "code", "code": True}, "fault code must be an API code"),
    ({"kind": "code", "code": -1}, "fault code must be an API code"),
    ({"kind": "code", "code": 10**60}, "fault code must be an API code"),
    ({"kind": "http_error", "status": "503"}, "fault status must be an HTTP error status"),
    ({"kind": "http_error", "status": 200}, "fault status must be an HTTP error status"),
    ({"kind": "drop", "count": -1}, "fault count must be an integer"),
    ({"kind": "drop", "count": 1.5}, "fault count must be an integer"),
    ({"kind": "drop", "count": "3"}, "fault count must be an integer"),
    ({"kind": "delay", "seconds": 1e9}, "fault seconds must be within [0, 600]"),
    ({"kind": "delay", "seconds": -1}, "fault seconds must be within [0, 600]"),
    ({"kind": "delay", "seconds": "1"}, "fault seconds must be a number"),
    ({"kind": "drop", "probability": 2}, "fault probability must be within [0, 1]"),
    ({"kind": "drop", "probability": "0.5"}, "fault probability must be a number"),
    ({"kind": 5}, "fault kind must be one of"),
    ({"kind": "explode"}, "fault kind must be one of"),
    ({"probability": 1}, "needs a kind"),
    ({"kind": "drop", "phase": "never"}, "fault phase must be one of"),
    ({"kind": "drop", "paths": ["/nope"]}, "fault path must be one of"),
    ({"kind": "drop", "paths": []}, "fault paths must be a non-empty list"),
    ({"kind": "drop", "paths": 5}, "fault paths must be a non-empty list"),
    ({"kind": "drop", "oops": 1}, "unknown fault fields: oops"),
    ({"kind": "code", "phase": "locked"}, "phase 'locked' takes kinds delay and drop"),
    ({"kind": "http_error", "phase": "locked"}, "phase 'locked' takes kinds delay and drop"),
    ({"kind": "drop", "phase": "locked", "paths": [QUERY]}, "only for cash-outs"),
    ([{"kind": "drop"}, "x"], "a fault rule must be an object"),
    ("x", "expected a fault rule"),
    ({"rules": {"kind": "drop"}}, "expected a fault rule"),
]


@pytest.mark.parametrize(("rule", "expected"), BAD_RULES)
def test_admin_refuses_malformed_fault_rules(
    sandbox: Sandbox, admin: httpx.Client, rule: Any, expected: str
) -> None:
    kept = sandbox.add_fault(FaultRule("delay", seconds=0.0))
    for mode in ("replace", "add"):
        assert expected in _error(admin.post(f"/_admin/faults?mode={mode}", json=rule))
    assert sandbox.app.faults.rules() == [kept]  # nothing changed


def test_admin_refuses_non_finite_fault_numbers(sandbox: Sandbox, admin: httpx.Client) -> None:
    for body in (b'{"kind": "delay", "seconds": NaN}', b'{"kind": "delay", "seconds": Infinity}',
                 b'{"kind": "drop", "probability": NaN}'):  # fmt: skip
        assert "fault" in _error(admin.post("/_admin/faults", content=body))
    assert sandbox.app.faults.rules() == []


def test_fault_rules_are_validated_in_python_and_on_the_command_line() -> None:
    with pytest.raises(ValueError, match="fault code must be an API code"):
        FaultRule("code", code="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"fault seconds must be within \[0, 600\], got nan"):
        FaultRule("delay", seconds=float("nan"))
    with pytest.raises(ValueError, match="code='x' is not a number"):
        FaultRule.parse("code:code=x")
    with pytest.raises(ValueError, match="phase 'locked' takes kinds delay and drop"):
        FaultRule.parse("code:phase=locked")
    assert FaultRule("drop", paths=QUERY).paths == (QUERY,)  # type: ignore[arg-type]
    # a delay defaults to the "locked" phase for cash-outs only
    assert FaultRule("delay").phase == "locked"
    assert FaultRule("delay", paths=(QUERY,)).phase == "before"
    rule = FaultRule.from_dict({"kind": "delay", "seconds": Decimal("0.5"), "count": 2})
    assert (rule.seconds, rule.count) == (0.5, 2) and isinstance(rule.seconds, float)


# ------------------------------------------------------------------------------ drop while locked


def test_a_drop_while_locked_loses_the_answer_and_the_cashout_still_commits(
    sandbox: Sandbox, api: _Api
) -> None:
    """Implemented, not refused: the connection closes while the wallet is locked, and the
    server carries on (as behind a proxy that timed out): the transId is in flight (code 35)
    until the commit, which then the query finds."""
    sandbox.set_member("lee", "6.5")
    drop = sandbox.add_fault(FaultRule("drop", phase="locked", count=1))
    sandbox.add_fault(FaultRule("delay", phase="locked", seconds=1.0, count=1))
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        api.post(CASHOUT, {"username": "lee", "transId": "DL-1"})
    assert time.monotonic() - started < 0.9  # dropped at once, not after the delay
    assert api.code(QUERY, "lee", "DL-1") == 35  # still being applied
    assert api.code(CASHOUT, "lee", "DL-1") == 35
    assert sandbox.wait_idle()
    assert api.code(QUERY, "lee", "DL-1") == 0 and sandbox.balance("lee") == 0
    assert drop.fired == 1 and sandbox.stats()["fault drop locked"] == 1
    assert [t.trans_id for t in sandbox.transactions("lee") if t.kind == "cashout"] == ["DL-1"]


def test_a_drop_while_locked_is_counted_only_when_it_acts(sandbox: Sandbox, api: _Api) -> None:
    drop = sandbox.add_fault(FaultRule("drop", phase="locked", count=1))
    assert api.code(CASHOUT, "nobody", "DL-2") == 8  # never got the lock: no drop
    assert drop.fired == 0 and "fault drop locked" not in sandbox.stats()


def test_the_client_settles_a_cashout_dropped_while_locked(sandbox: Sandbox, fast: Any) -> None:
    sandbox.set_member("max", 4)
    drop = sandbox.add_fault(FaultRule("drop", phase="locked", count=1))
    with vpseal.Client(**sandbox.client_kwargs(), **fast) as client:
        result = client.cashout("max", "DL-3")
    assert result.amount == Decimal(4) and result.attempts >= 2 and drop.fired == 1
    assert sandbox.wait_idle()
    assert [t.trans_id for t in sandbox.transactions("max") if t.kind == "cashout"] == ["DL-3"]


# ------------------------------------------------------------------------------ connection resets


def _get_and_reset(port: int) -> None:
    """One keep-alive request, then a reset (RST) instead of an orderly close."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /_admin/stats HTTP/1.1\r\nHost: sandbox\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_resetting_its_connection_is_one_debug_line(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="vpseal.sandbox")
    for _ in range(3):
        _get_and_reset(sandbox.port)

    def closed() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "closed its connection" in r.getMessage()]

    deadline = time.monotonic() + 5
    while len(closed()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err
    records = closed()
    assert len(records) == 3
    for record in records:
        assert record.levelno == logging.DEBUG and record.exc_info is None
        assert "\n" not in record.getMessage() and "ConnectionResetError" in record.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_admin_answers_a_number_beyond_decimal_range_with_400(sandbox: Sandbox) -> None:
    status, body = sandbox.admin("POST", "/_admin/members", "", b'{"x": 1e99999999999999999999}')
    assert status == 400 and b"out of range" in body
