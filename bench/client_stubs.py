"""The client with its HTTP option replaced by a stub that answers at once: what
bench/test_client_work.py times and bench/callgrind counts (vpseal's own work per request,
without I/O)."""

from __future__ import annotations

import json
from typing import Any

import vpseal
from vpseal import _client_core as core
from vpseal.sandbox import DEMO_AGENT_ID, DEMO_API_KEY, DEMO_SECRET

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


def client_kwargs() -> dict[str, Any]:
    # verify=False: the stub replaces the HTTP option before any request, and loading the CA
    # bundle would only slow the set-up (by millions of instructions under valgrind)
    return {
        "agent_id": DEMO_AGENT_ID, "api_key": DEMO_API_KEY, "secret": DEMO_SECRET, "timeout": 5.0,
        "verify": False,
    }  # fmt: skip


def with_token(client: Any) -> Any:
    client._tokens.store(core.Token("stub-token", 3600.0))
    return client


def stub_client() -> vpseal.Client:
    """A sync client with a token and the stub HTTP option."""
    client = with_token(vpseal.Client("http://127.0.0.1:9", **client_kwargs()))
    client._http = StubHTTP()
    return client  # type: ignore[no-any-return]


def stub_async_client() -> vpseal.AsyncClient:
    """An async client with a token and the stub HTTP option."""
    client = with_token(vpseal.AsyncClient("http://127.0.0.1:9", **client_kwargs()))
    client._loop_state.http = AsyncStubHTTP()
    return client  # type: ignore[no-any-return]
