"""The ``vpseal`` command: demo, cashout, check and sandbox, with secrets only from the env."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from vpseal.cli import main
from vpseal.sandbox import DEMO_API_KEY, DEMO_SECRET, FaultRule, Sandbox

pytest_plugins = ["_sandbox_helpers"]

ENV_NAMES = ("VPSEAL_BASE_URL", "VPSEAL_AGENT_ID", "VPSEAL_API_KEY", "VPSEAL_SECRET",
             "VPSEAL_DEMO_USERNAME")  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def env_for(clean_env: pytest.MonkeyPatch, sandbox: Sandbox) -> Iterator[Sandbox]:
    for name, value in sandbox.client_env().items():
        clean_env.setenv(name, value)
    yield sandbox


def _json(text: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(text, parse_float=Decimal)
    return doc


def test_demo_runs_with_no_configuration(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "started a local sandbox at http://127.0.0.1:" in out
    assert "withdrew 2323.582, balance now 0" in out
    assert "-2323.582 for demo-player-001" in out
    assert "code 2: The balance is not enough." in out
    assert "books balanced: True" in out
    assert DEMO_API_KEY not in out and DEMO_SECRET not in out


def test_demo_against_a_configured_endpoint_needs_a_username(
    env_for: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["demo"]) == 2
    assert "USERNAME" in capsys.readouterr().err
    env_for.set_member("remote-player", "5.5")
    monkeypatch.setenv("VPSEAL_DEMO_USERNAME", "remote-player")
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert f"Talking to {env_for.base_url}" in out and "withdrew 5.5" in out
    assert env_for.balance("remote-player") == 0


def test_cashout_and_check_as_json(env_for: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    env_for.set_member("alice", "2323.582")
    assert main(["cashout", "alice", "--trans-id", "CLI-1", "--json"]) == 0
    doc = _json(capsys.readouterr().out)
    assert doc["ok"] is True and doc["transId"] == "CLI-1"
    assert doc["amount"] == Decimal("2323.582") and doc["balance"] == 0
    assert main(["check", "alice", "CLI-1", "--json"]) == 0
    doc = _json(capsys.readouterr().out)
    assert doc["amount"] == Decimal("-2323.582") and doc["username"] == "alice"
    assert str(doc["transactionTime"]).endswith("+00:00")


def test_cashout_and_check_as_text(env_for: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    env_for.set_member("bob", 3)
    assert main(["cashout", "bob", "--trans-id", "CLI-2"]) == 0
    assert "cashed out 3 (balance now 0)" in capsys.readouterr().out
    assert main(["check", "bob", "CLI-2"]) == 0
    assert "withdrawal of 3 for bob" in capsys.readouterr().out


def test_api_errors_exit_1(env_for: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    env_for.set_member("carol", 0)
    assert main(["cashout", "carol", "--json"]) == 1
    doc = _json(capsys.readouterr().out)
    assert (doc["ok"], doc["error"], doc["code"]) == (False, "BalanceNotEnough", 2)
    assert main(["check", "carol", "none"]) == 1
    assert "TransactionNotFound" in capsys.readouterr().err


def test_unknown_outcome_exits_3_with_the_trans_id(
    env_for: Sandbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fast: dict[str, Any],
) -> None:
    from vpseal.client import Client

    # retries with test timings: what is tested is the report, not the backoff
    monkeypatch.setattr("vpseal.cli.Client", functools.partial(Client, **fast))
    env_for.set_member("dave", 1)
    env_for.add_fault(FaultRule("drop", paths=("/v2/members/cashout",
                                               "/v2/members/check/transactions")))  # fmt: skip
    assert main(["cashout", "dave", "--trans-id", "CLI-U"]) == 3
    err = capsys.readouterr().err
    assert "OutcomeUnknown" in err and "--trans-id CLI-U" in err


def test_missing_configuration_exits_2_naming_it(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cashout", "x"]) == 2
    assert "VPSEAL_BASE_URL" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--api-key", "--secret", "--agent-id"])
def test_secrets_are_not_accepted_as_arguments(flag: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["cashout", "x", flag, "value"])
    assert info.value.code == 2


def test_sandbox_command_serves_the_api(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSEAL_")}
    env["PYTHONUNBUFFERED"] = "1"
    if "VPSEAL_BACKEND" in os.environ:
        env["VPSEAL_BACKEND"] = os.environ["VPSEAL_BACKEND"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpseal", "sandbox", "--port", "0", "--member", "erin=9.75",
         "--token-ttl", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = []
        while not lines or ("VPSEAL_SECRET" not in lines[-1] and lines[-1]):
            lines.append(proc.stdout.readline())
        url = lines[0].split()[-1]
        assert url.startswith("http://127.0.0.1:")
        text = "".join(lines)
        assert "DEMO credentials (public, for this sandbox only)" in text
        assert f"export VPSEAL_API_KEY={DEMO_API_KEY}" in text
        client_env = {**env, "VPSEAL_BASE_URL": url, "VPSEAL_AGENT_ID": "vpseal-demo-agent",
                      "VPSEAL_API_KEY": DEMO_API_KEY, "VPSEAL_SECRET": DEMO_SECRET}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "vpseal", "cashout", "erin", "--json"],
            capture_output=True, text=True, env=client_env, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert _json(done.stdout)["amount"] == Decimal("9.75")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bad_sandbox_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--port", "0", "--fault", "explode"]) == 2
    assert main(["sandbox", "--port", "0", "--member", "nobalance"]) == 2
    assert "NAME=BALANCE" in capsys.readouterr().err


def test_interrupted_cashout_names_its_trans_id(
    env_for: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a request may be on its way: the (generated) transId is still reported,
    in one line (exit 130, as for any Ctrl-C), so the cash-out can be repeated or checked
    instead of being lost; under --json one object that says the outcome is unknown."""
    from vpseal.client import Client

    sent: list[str] = []

    def interrupted(self: Client, username: str, trans_id: str | None = None) -> None:
        assert trans_id is not None  # chosen by the command, before anything is sent
        sent.append(trans_id)
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "cashout", interrupted)
    assert main(["cashout", "erin"]) == 130
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert len(sent) == 1 and f"--trans-id {sent[0]}" in captured.err
    assert "interrupted" in captured.err and "unknown" in captured.err
    assert f"vpseal check erin {sent[0]}" in captured.err
    assert main(["cashout", "erin", "--trans-id", "MINE", "--json"]) == 130
    doc = _json(capsys.readouterr().out)
    assert doc == {"ok": False, "error": "OutcomeUnknown", "interrupted": True,
                   "outcome": "unknown", "transId": "MINE", "reason": "interrupted"}  # fmt: skip
