"""One client per process: the recipe for using many cores, and the guard that stops a client
from being used in a process it was not made in (its sockets, or pyreqwest's runtime threads,
belong to the parent)."""

from __future__ import annotations

import multiprocessing
import os
import sys
from decimal import Decimal
from typing import Any

import pytest

import vpseal
from vpseal.sandbox import Sandbox

pytest_plugins = ["_sandbox_helpers"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork() is POSIX")

CASHOUT = "/v2/members/cashout"


def _in_child(work: Any) -> str:
    """Run ``work()`` in a forked child; what it returns (or the error it raises) as text."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            text = f"ok {work()}"
        except BaseException as exc:
            text = f"{type(exc).__name__}: {exc}"
        os.write(write, text.encode()[:4000])
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(pid, 0)
    return text


def test_a_client_used_in_a_forked_child_refuses_before_sending(
    sandbox: Sandbox, http_option: str, fast: dict[str, Any]
) -> None:
    sandbox.set_member("parent", 1)
    sandbox.set_member("child", 1)
    with vpseal.Client(**sandbox.client_kwargs(), **fast) as client:
        client.cashout("parent", "P-1")
        sent = sandbox.stats()["requests " + CASHOUT]
        text = _in_child(lambda: client.cashout("child", "C-1"))
        assert text.startswith("ConfigError: this Client was created in process"), text
        assert "after fork" in text
        assert sandbox.stats()["requests " + CASHOUT] == sent  # nothing left the child
        assert client.cashout("child", "C-2").amount == Decimal(1)  # the parent's still works


def test_an_async_client_used_in_a_forked_child_refuses_before_sending(
    sandbox: Sandbox, fast: dict[str, Any]
) -> None:
    import asyncio

    client = vpseal.AsyncClient(**sandbox.client_kwargs(), **fast)
    text = _in_child(lambda: asyncio.run(client.authenticate()))
    assert text.startswith("ConfigError: this AsyncClient was created in process"), text
    assert sandbox.stats().get("requests /v2/auth", 0) == 0
    asyncio.run(client.aclose())


def test_pyreqwest_after_fork_is_a_config_error_that_says_why(sandbox: Sandbox) -> None:
    pytest.importorskip("pyreqwest")
    with vpseal.Client(**sandbox.client_kwargs(), http="pyreqwest") as client:
        client.authenticate()  # the runtime now runs in this process
        text = _in_child(lambda: vpseal.Client(**sandbox.client_kwargs(), http="pyreqwest"))
    assert text.startswith("ConfigError: http='pyreqwest' cannot start a client here"), text
    assert "fork" in text


# ------------------------------------------------------------------------------ the recipe

_worker_client: vpseal.Client | None = None


def _start_worker(kwargs: dict[str, Any]) -> None:
    """Pool initializer: each process makes its own client, after it started."""
    global _worker_client
    _worker_client = vpseal.Client(**kwargs)


def _cash_out(username: str) -> tuple[int, str, str]:
    assert _worker_client is not None
    result = _worker_client.cashout(username, f"MP-{username}")
    return os.getpid(), username, str(result.amount)


def test_one_client_per_process_recipe(sandbox: Sandbox, http_option: str) -> None:
    """The documented recipe: a process pool whose initializer creates the client ("spawn",
    which every HTTP option supports; "fork" works too when no pyreqwest client ran before)."""
    names = [f"mp{i}" for i in range(8)]
    for name in names:
        sandbox.set_member(name, 2)
    kwargs = {**sandbox.client_kwargs(), "http": http_option, "timeout": 5.0}
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2, initializer=_start_worker, initargs=(kwargs,)) as pool:
        done = pool.map(_cash_out, names)
    assert sorted(name for _, name, _ in done) == names
    assert {amount for _, _, amount in done} == {"2"}
    assert len({pid for pid, _, _ in done} - {os.getpid()}) >= 1
    assert sandbox.totals()["cashouts"] == len(names)
