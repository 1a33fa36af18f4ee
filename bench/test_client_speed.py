"""Cash-outs per second against the sandbox on loopback (sync and async client), and the share
of the client's time that goes to sealing requests.

The sandbox runs in its own process (``python -m vpseal sandbox --port 0``), so that this
process's CPU time is the client's alone. Each round cashes out members seeded just before it
(pytest-benchmark's setup, not timed). The sealing share wraps the ``seal_request`` the client
calls and compares its time with the client process's CPU time and with the wall time.

    .venv/bin/python -m pytest bench/test_client_speed.py -s  # VPSEAL_BENCH_SHORT=1: few rounds
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import vpseal
from vpseal import _client_core
from vpseal.sandbox import DEMO_AGENT_ID, DEMO_API_KEY, DEMO_SECRET

SHORT = bool(os.environ.get("VPSEAL_BENCH_SHORT"))
ROUNDS = 2 if SHORT else 8
PER_ROUND = 50 if SHORT else 400
CONCURRENCY = 32
_names = itertools.count()


class SealTimer:
    """Wraps the client's seal_request and adds up the time spent in it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._real = _client_core.seal_request

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._real(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSEAL_SANDBOX")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpseal", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        assert url.startswith("http://"), url
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _seed(url: str, count: int) -> list[str]:
    names = [f"bench-{next(_names)}" for _ in range(count)]
    members = [{"username": n, "balance": "100.5"} for n in names]
    response = httpx.post(url + "/_admin/members", json=members, timeout=60)
    response.raise_for_status()
    return names


def _kwargs(url: str) -> dict[str, Any]:
    return {"base_url": url, "agent_id": DEMO_AGENT_ID, "api_key": DEMO_API_KEY,
            "secret": DEMO_SECRET}  # fmt: skip


def _report(benchmark: Any, impl: str, timer: SealTimer, cpu: float, wall: float, n: int) -> None:
    rate = n / min(benchmark.stats.stats.data) if benchmark.stats else float("nan")
    benchmark.extra_info.update(
        impl=impl,
        per=n,
        cashouts_per_second=round(rate, 1),
        seal_share_of_client_cpu=round(timer.seconds / cpu, 4) if cpu else None,
        seal_share_of_wall=round(timer.seconds / wall, 4) if wall else None,
        seal_us_per_call=round(timer.seconds / max(1, timer.calls) * 1e6, 2),
        backend=vpseal.backend(),
    )
    print(
        f"\n{impl}: {rate:,.0f} cash-outs/s (best round); sealing {timer.seconds / cpu:.1%} of "
        f"client CPU, {timer.seconds / wall:.1%} of wall, "
        f"{timer.seconds / max(1, timer.calls) * 1e6:.1f} us/call ({vpseal.backend()})"
    )


def test_sync_cashouts_per_second(
    benchmark: Any, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    timer = SealTimer()
    monkeypatch.setattr(_client_core, "seal_request", timer)
    benchmark.group = "client cash-outs"
    totals = {"cpu": 0.0, "wall": 0.0, "n": 0}
    with vpseal.Client(**_kwargs(sandbox_url)) as client:
        client.authenticate()

        def setup() -> tuple[tuple[list[str]], dict[str, Any]]:
            return (_seed(sandbox_url, PER_ROUND),), {}

        def run(names: list[str]) -> None:
            cpu, wall = time.process_time(), time.perf_counter()
            for name in names:
                client.cashout(name)
            totals["cpu"] += time.process_time() - cpu
            totals["wall"] += time.perf_counter() - wall
            totals["n"] += len(names)

        benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    assert timer.calls >= totals["n"]
    _report(benchmark, "sync", timer, totals["cpu"], totals["wall"], PER_ROUND)


def test_async_cashouts_per_second(
    benchmark: Any, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    timer = SealTimer()
    monkeypatch.setattr(_client_core, "seal_request", timer)
    benchmark.group = "client cash-outs"
    totals = {"cpu": 0.0, "wall": 0.0, "n": 0}
    loop = asyncio.new_event_loop()
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    http = httpx.AsyncClient(limits=limits)
    client = vpseal.AsyncClient(**_kwargs(sandbox_url), http_client=http)
    loop.run_until_complete(client.authenticate())

    async def cash_out_all(names: list[str]) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(name: str) -> None:
            async with gate:
                await client.cashout(name)

        await asyncio.gather(*(one(n) for n in names))

    def setup() -> tuple[tuple[list[str]], dict[str, Any]]:
        return (_seed(sandbox_url, PER_ROUND),), {}

    def run(names: list[str]) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        loop.run_until_complete(cash_out_all(names))
        totals["cpu"] += time.process_time() - cpu
        totals["wall"] += time.perf_counter() - wall
        totals["n"] += len(names)

    try:
        benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    finally:
        loop.run_until_complete(http.aclose())
        loop.close()
    assert timer.calls >= totals["n"]
    _report(benchmark, "async", timer, totals["cpu"], totals["wall"], PER_ROUND)
