"""vpseal's own work per request, without I/O: seal, prepare, the flow, answer parsing and
the driver loop, with the HTTP option replaced by a stub that answers at once. This is the
share of a gateway's CPU that vpseal controls whatever HTTP library moves the bytes
(target: <= 15 us per cash-out, hot).

    .venv-test/bin/python -m pytest bench/test_client_work.py
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from client_stubs import stub_async_client, stub_client
from conftest import SHORT

import vpseal
from vpseal import _client_core as core
from vpseal.sandbox import DEMO_AGENT_ID, DEMO_API_KEY

GROUP = "client own work per cash-out"
BATCH = 200  # cash-outs per timed call (the async one needs a loop around them)


def test_sync_client_own_work(benchmark: Any) -> None:
    client = stub_client()
    ids = (f"T-{i}" for i in itertools.count())

    def run() -> None:
        for _ in range(BATCH):
            client.cashout("player001", next(ids))

    benchmark.group = GROUP
    benchmark.extra_info.update(impl="sync", per=BATCH)
    benchmark.pedantic(run, rounds=5 if SHORT else 30, iterations=1, warmup_rounds=1)
    assert client.cashout("player001", "last").amount == core.Decimal("2323.582")


def test_async_client_own_work(benchmark: Any) -> None:
    client = stub_async_client()
    ids = (f"T-{i}" for i in itertools.count())
    loop = asyncio.new_event_loop()

    async def many() -> None:
        for _ in range(BATCH):
            await client.cashout("player001", next(ids))

    benchmark.group = GROUP
    benchmark.extra_info.update(impl="async", per=BATCH)
    try:
        benchmark.pedantic(
            lambda: loop.run_until_complete(many()),
            rounds=5 if SHORT else 30, iterations=1, warmup_rounds=1,
        )  # fmt: skip
    finally:
        loop.close()


def test_seal_alone(benchmark: Any) -> None:
    """The floor inside the floor: sealing the same payload, nothing else."""
    creds = vpseal.Credentials(DEMO_AGENT_ID, DEMO_API_KEY)
    payload = {"username": "player001", "transId": "T-1"}

    def run() -> None:
        for _ in range(BATCH):
            vpseal.seal_request(creds, payload)

    benchmark.group = GROUP
    benchmark.extra_info.update(impl="seal only", per=BATCH)
    benchmark.pedantic(run, rounds=5 if SHORT else 30, iterations=1, warmup_rounds=1)
