"""The HTTP options themselves: choosing one, what each refuses, and that each keeps its
connections alive under concurrency. Behaviour shared by every option (retries, settling,
errors) is tested once per option by the client test modules."""

from __future__ import annotations

import asyncio
import ssl
import threading
from decimal import Decimal
from typing import Any

import pytest

import vpseal
from vpseal import _http_pyreqwest
from vpseal.sandbox import Sandbox

pytest_plugins = ["_sandbox_helpers"]


def test_unknown_option_is_a_config_error(sandbox: Sandbox) -> None:
    with pytest.raises(vpseal.ConfigError, match="http must be one of httpx, pyreqwest"):
        vpseal.Client(**sandbox.client_kwargs(), http="requests")


@pytest.mark.parametrize("bad", [0, -1, 10_001, True, 2.5, "8"])
def test_max_connections_is_checked(sandbox: Sandbox, bad: Any) -> None:
    with pytest.raises(vpseal.ConfigError, match="max_connections"):
        vpseal.Client(**sandbox.client_kwargs(), max_connections=bad)


def test_an_httpx_client_cannot_be_given_to_pyreqwest(sandbox: Sandbox) -> None:
    import httpx

    with httpx.Client() as http, pytest.raises(vpseal.ConfigError, match="http_client"):
        vpseal.Client(**sandbox.client_kwargs(), http="pyreqwest", http_client=http)


def test_missing_pyreqwest_fails_at_construction_naming_the_extra(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = "pyreqwest has no release for Python 3.10 (it needs 3.11 or later)"
    monkeypatch.setattr(_http_pyreqwest, "_MISSING", reason)
    for make in (vpseal.Client, vpseal.AsyncClient):
        with pytest.raises(vpseal.ConfigError) as info:
            make(**sandbox.client_kwargs(), http="pyreqwest")
        assert "pip install 'vpseal[pyreqwest]'" in str(info.value)
        assert reason in str(info.value)
    with vpseal.Client(**sandbox.client_kwargs(), http="httpx") as client:  # the rest works
        client.authenticate()


def test_pyreqwest_refuses_an_ssl_context(sandbox: Sandbox) -> None:
    pytest.importorskip("pyreqwest")
    with pytest.raises(vpseal.ConfigError, match="verify=True, False or a CA bundle path"):
        vpseal.Client(
            **sandbox.client_kwargs(), http="pyreqwest", verify=ssl.create_default_context()
        )


@pytest.mark.parametrize("verify", [42, None, b"ca.pem"])
def test_verify_is_checked(sandbox: Sandbox, verify: Any) -> None:
    with pytest.raises(vpseal.ConfigError, match="verify"):
        vpseal.Client(**sandbox.client_kwargs(), verify=verify)


def test_an_unreadable_ca_bundle_is_a_config_error(sandbox: Sandbox, http_option: str) -> None:
    with pytest.raises(vpseal.ConfigError, match="cannot load the CA bundle"):
        vpseal.Client(**sandbox.client_kwargs(), verify="/nonexistent/ca.pem")


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "5", True])
def test_bad_timeouts_are_config_errors(sandbox: Sandbox, http_option: str, bad: Any) -> None:
    with pytest.raises(vpseal.ConfigError, match="timeout"):
        vpseal.Client(**sandbox.client_kwargs(), timeout=bad)


def test_sync_pool_keeps_its_connections_alive_under_concurrency(
    sandbox: Sandbox, fast: dict[str, Any]
) -> None:
    """16 threads sharing one client with max_connections=16: after the first round has
    opened the pool, later rounds reuse it (no reconnect churn)."""
    names = [f"k{i}" for i in range(16 * 6)]
    for name in names:
        sandbox.set_member(name, 1)
    with vpseal.Client(**sandbox.client_kwargs(), **fast, max_connections=16) as client:
        client.authenticate()
        barrier = threading.Barrier(16)
        errors: list[BaseException] = []

        def work(mine: list[str]) -> None:
            try:
                for name in mine:
                    barrier.wait(timeout=10)
                    assert client.cashout(name).amount == Decimal(1)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(names[i::16],)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not errors
    assert sandbox.totals()["cashouts"] == len(names)
    assert sandbox.stats()["connections"] <= 17  # the pool (16) and the token's first one


def test_async_pool_keeps_its_connections_alive_under_concurrency(
    sandbox: Sandbox, fast: dict[str, Any]
) -> None:
    names = [f"a{i}" for i in range(32 * 4)]
    for name in names:
        sandbox.set_member(name, 1)

    async def run() -> None:
        async with vpseal.AsyncClient(
            **sandbox.client_kwargs(), **fast, max_connections=32
        ) as client:
            await client.authenticate()
            for start in range(0, len(names), 32):
                batch = names[start : start + 32]
                done = await asyncio.gather(*(client.cashout(n) for n in batch))
                assert {r.amount for r in done} == {Decimal(1)}

    asyncio.run(run())
    assert sandbox.totals()["cashouts"] == len(names)
    assert sandbox.stats()["connections"] <= 33
