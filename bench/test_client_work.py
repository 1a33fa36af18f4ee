"""vpseal's own work per request, without I/O: seal, prepare, the flow, answer parsing and
the driver loop, with the HTTP option replaced by a stub that answers at once. This is the
share of a gateway's CPU that vpseal controls whatever HTTP library moves the bytes
(target: <= 15 us per cash-out, hot).

    .venv-test/bin/python -m pytest bench/test_client_work.py
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from conftest import SHORT

import vpseal
from vpseal import _client_core as core
from vpseal.sandbox import DEMO_AGENT_ID, DEMO_API_KEY, DEMO_SECRET

GROUP = "client own work per cash-out"
BATCH = 200  # cash-outs per timed call (the async one needs a loop around them)

ANSWER = json.dumps(
    {
        "code": 0,
        "message": "Success",
        "data": {"amount": 2323.582, "balance": 0},
        "logUUID": "d4b5d1a2-0b8e-4f3c-9a52-3f0e2d6c7b11",
    }
).encode()


class StubHTTP:
    """Answers every request with a code-0 cash-out, as a real shell would classify it."""

    def post(self, prepared: core.Prepared, bound: float | None) -> core.Outcome:
        return core.classify_response(200, ANSWER)

    def close(self) -> None:
        pass


class AsyncStubHTTP:
    loop_bound = False

    async def post(self, prepared: core.Prepared, bound: float | None) -> core.Outcome:
        return core.classify_response(200, ANSWER)

    async def aclose(self) -> None:
        pass


def _kwargs() -> dict[str, Any]:
    return {
        "agent_id": DEMO_AGENT_ID, "api_key": DEMO_API_KEY, "secret": DEMO_SECRET, "timeout": 5.0,
    }  # fmt: skip


def _with_token(client: Any) -> Any:
    client._tokens.store(core.Token("stub-token", 3600.0))
    return client


def test_sync_client_own_work(benchmark: Any) -> None:
    client = _with_token(vpseal.Client("http://127.0.0.1:9", **_kwargs()))
    client._http = StubHTTP()
    ids = (f"T-{i}" for i in itertools.count())

    def run() -> None:
        for _ in range(BATCH):
            client.cashout("player001", next(ids))

    benchmark.group = GROUP
    benchmark.extra_info.update(impl="sync", per=BATCH)
    benchmark.pedantic(run, rounds=5 if SHORT else 30, iterations=1, warmup_rounds=1)
    assert client.cashout("player001", "last").amount == core.Decimal("2323.582")


def test_async_client_own_work(benchmark: Any) -> None:
    client = _with_token(vpseal.AsyncClient("http://127.0.0.1:9", **_kwargs()))
    client._loop_state.http = AsyncStubHTTP()
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



