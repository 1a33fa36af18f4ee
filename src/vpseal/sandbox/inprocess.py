"""The sandbox without a socket: httpx transports that hand each request to its application.

For SDKs and gateways that test in-process (``httpx.MockTransport`` style)::

    with InProcessSandbox(members={"alice": "10.5"}) as sb, sb.client() as client:
        result = client.cashout("alice", "T-1")

or, with your own httpx client: ``httpx.Client(transport=sb.transport())`` passed as
``vpseal.Client(**sb.client_kwargs(), http_client=...)``.

Each request runs in a thread of its own, as on the HTTP server, so what the network does is
kept: a "drop" fault raises ``httpx.RemoteProtocolError`` (the server closed the connection
without answering; a drop while the wallet is locked raises it before the cash-out commits,
which then goes on), a "delay" longer than the request's read timeout raises
``httpx.ReadTimeout`` while the request goes on in the sandbox, and a closed sandbox raises
``httpx.ConnectError``. The async transport never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from vpseal.sandbox.server import MAX_BODY, Reply, Sandbox, SandboxConfig, envelope

if TYPE_CHECKING:
    import vpseal

BASE_URL = "http://vpseal-sandbox.invalid"  # .invalid: never resolves, so never a real host


class InProcessSandbox(Sandbox):
    """A Sandbox served through httpx transports instead of a socket.

    Everything a Sandbox has (members, ledger, faults, stats, the admin endpoints under
    ``/_admin/``) works the same; ``start()`` and ``with`` open nothing, ``base_url`` is
    ``http://vpseal-sandbox.invalid`` (any host reaches the sandbox through its transports),
    and there is no port. ``close()`` waits for requests in progress and closes the ledger;
    requests after it raise ``httpx.ConnectError``."""

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self._closed = False
        self._http_clients: list[httpx.Client] = []

    def __repr__(self) -> str:
        return f"InProcessSandbox(agent_id={self.config.agent_id!r})"

    # -- lifecycle: nothing to open

    def bind(self) -> InProcessSandbox:
        return self

    def start(self) -> InProcessSandbox:
        return self

    def serve_forever(self) -> None:
        raise RuntimeError("an InProcessSandbox has no socket to serve on; use a Sandbox")

    def close(self, wait: float = 5.0) -> None:
        """Close the httpx clients made by ``http_client``/``client``, wait for requests in
        progress (up to ``wait`` s) and close the ledger."""
        if self._closed:
            return
        self._closed = True
        clients, self._http_clients = self._http_clients, []
        for client in clients:
            client.close()
        super().close(wait)

    def __enter__(self) -> InProcessSandbox:
        return self

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def port(self) -> int:
        raise RuntimeError("an InProcessSandbox has no port")

    @property
    def base_url(self) -> str:
        return BASE_URL

    # -- transports and clients

    def transport(self) -> SandboxTransport:
        """An ``httpx.BaseTransport`` for ``httpx.Client(transport=...)``."""
        return SandboxTransport(self)

    def async_transport(self) -> AsyncSandboxTransport:
        """An ``httpx.AsyncBaseTransport`` for ``httpx.AsyncClient(transport=...)``."""
        return AsyncSandboxTransport(self)

    def http_client(self, **options: Any) -> httpx.Client:
        """An ``httpx.Client`` on this sandbox (closed with it); ``options`` go to httpx."""
        client = httpx.Client(transport=self.transport(), base_url=BASE_URL, **options)
        self._http_clients.append(client)
        return client

    def async_http_client(self, **options: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on this sandbox; ``options`` go to httpx. Create it inside
        the event loop that uses it (as any http_client given to vpseal.AsyncClient)."""
        return httpx.AsyncClient(transport=self.async_transport(), base_url=BASE_URL, **options)

    def client(self, **options: Any) -> vpseal.Client:
        """A ``vpseal.Client`` on this sandbox, as the demo agent; ``options`` go to the
        Client (``timeout``, ``max_retries``, ...). Its httpx client closes with the sandbox."""
        from vpseal import Client

        return Client(**{**self.client_kwargs(), "http_client": self.http_client(), **options})

    def async_client(self, **options: Any) -> vpseal.AsyncClient:
        """A ``vpseal.AsyncClient`` on this sandbox (create it inside its event loop)."""
        from vpseal import AsyncClient

        http_client = self.async_http_client()
        return AsyncClient(**{**self.client_kwargs(), "http_client": http_client, **options})

    # -- one request

    def _dispatch(self, request: httpx.Request, body: bytes, done: Callable[[Reply], None]) -> None:
        """Run the request in a thread of its own; ``done`` gets the first of its reply and a
        drop (the connection closed while the request goes on)."""
        if self._closed:
            raise httpx.ConnectError("the in-process sandbox is closed", request=request)
        headers: dict[str, str] = {}
        for name, value in request.headers.multi_items():
            headers[name.lower()] = value  # the last of a repeated header, as the server does
        target = request.url.raw_path.decode("ascii")
        method = request.method
        once = threading.Lock()
        answered = False

        def answer(reply: Reply) -> None:
            nonlocal answered
            with once:
                if answered:
                    return
                answered = True
            done(reply)

        def run() -> None:
            reply = Reply(drop=True)
            try:
                if method == "POST" and len(body) > MAX_BODY:
                    reply = Reply(413, envelope(11))
                else:
                    reply = self.respond(
                        method, target, headers, body, lambda: answer(Reply(drop=True))
                    )
            finally:
                answer(reply)

        threading.Thread(target=run, name="vpseal-sandbox-inprocess", daemon=True).start()


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout", {})
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def _response(request: httpx.Request, reply: Reply) -> httpx.Response:
    if reply.drop:
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    headers = {
        "content-type": reply.content_type,
        "content-length": str(len(reply.body)),
        "server": "vpseal-sandbox (in-process)",
    }
    return httpx.Response(reply.status, headers=headers, content=reply.body, request=request)


class SandboxTransport(httpx.BaseTransport):
    """Sync transport over an InProcessSandbox (see the module docstring)."""

    def __init__(self, sandbox: InProcessSandbox) -> None:
        self.sandbox = sandbox

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        event = threading.Event()
        replies: list[Reply] = []

        def done(reply: Reply) -> None:
            replies.append(reply)
            event.set()

        self.sandbox._dispatch(request, body, done)
        if not event.wait(_read_timeout(request)):
            raise httpx.ReadTimeout("timed out", request=request)
        return _response(request, replies[0])


class AsyncSandboxTransport(httpx.AsyncBaseTransport):
    """Async transport over an InProcessSandbox: the request runs in a thread, the event loop
    waits for it without blocking."""

    def __init__(self, sandbox: InProcessSandbox) -> None:
        self.sandbox = sandbox

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()

        def resolve(reply: Reply) -> None:
            if not future.done():
                future.set_result(reply)

        def done(reply: Reply) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(resolve, reply)

        self.sandbox._dispatch(request, body, done)
        seconds = _read_timeout(request)
        try:
            if seconds is None:
                reply = await future
            else:
                reply = await asyncio.wait_for(future, seconds)
        except asyncio.TimeoutError:
            raise httpx.ReadTimeout("timed out", request=request) from None
        return _response(request, reply)
