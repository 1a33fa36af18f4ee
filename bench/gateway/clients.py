"""The clients the gateway benchmark measures, each behind one small interface.

Every driver sends cash-outs ``{"username": "player001", "transId": <unique>}``, each freshly
sealed, with a bearer token it fetched once from ``/v2/auth`` before measuring, and checks
every answer (JSON parsed with ``Decimal`` amounts, ``code`` returned to the runner). ``slot``
is the worker's index (0..c-1): only the floor uses it, to give each worker its own connection.

- ``floor``: a minimal raw asyncio ``Protocol`` HTTP/1.1 client written for the benchmark only;
  what any Python client on that event loop could at best cost.
- ``pyreqwest``, ``aiohttp``, ``httpx`` (async) and ``pyreqwest``, ``httpx`` (sync): the HTTP
  library driven by hand with ``vpseal.seal_request``: the cost of the library alone.
- ``hand-httpx``: what a user writes without vpseal: httpx plus the ``cryptography`` pipeline
  of bench/pipelines.py (json.dumps, os.urandom IV, AESGCM, base64, secrets, hashlib).
- ``vpseal-httpx``, ``vpseal-pyreqwest``: vpseal's own ``AsyncClient`` / ``Client``.

A driver whose library is missing, or whose vpseal arguments do not exist yet, raises ``Skip``
from ``start`` with the reason, and its row says so.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import vpseal
from vpseal.sandbox import DEMO_AGENT_ID, DEMO_API_KEY, DEMO_SECRET

AUTH = "/v2/auth"
CASHOUT = "/v2/members/cashout"
USERNAME = "player001"
TIMEOUT = 10.0
CREDS = vpseal.Credentials(DEMO_AGENT_ID, DEMO_API_KEY)


class Skip(Exception):
    """This driver cannot run here; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where the server is and how to trust it; c is the concurrency to size pools for."""

    host: str
    port: int
    c: int
    cafile: str | None = None  # set for TLS: the test certificate, the only trust anchor

    @property
    def base_url(self) -> str:
        return f"{'https' if self.cafile else 'http'}://{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        return None if self.cafile is None else ssl.create_default_context(cafile=self.cafile)

    def pem(self) -> bytes | None:
        if self.cafile is None:
            return None
        with open(self.cafile, "rb") as f:
            return f.read()


def payload(trans_id: str) -> dict[str, str]:
    return {"username": USERNAME, "transId": trans_id}


def auth_payload() -> dict[str, str]:
    return {"agentId": DEMO_AGENT_ID, "secret": DEMO_SECRET}


def answer_code(content: bytes) -> int:
    """Parse an answer as a client must (amounts as Decimal) and return its code."""
    doc = json.loads(content, parse_float=Decimal)
    code: int = doc["code"]
    return code


def token_from(content: bytes) -> str:
    doc = json.loads(content, parse_float=Decimal)
    if doc.get("code") != 0:
        raise RuntimeError(f"/v2/auth answered {doc!r}")
    token: str = doc["data"]["accessToken"]
    return token


def _require(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise Skip(f"{module} is not importable here ({exc})") from None


# ---------------------------------------------------------------- interfaces


class AsyncDriver:
    name: ClassVar[str]
    kind: ClassVar[str] = "async"

    def __init__(self, target: Target) -> None:
        self.target = target

    async def start(self) -> None:
        """Connect and authenticate (not measured)."""

    async def one(self, slot: int, trans_id: str) -> int:
        raise NotImplementedError

    async def close(self) -> None:
        pass


class SyncDriver:
    name: ClassVar[str]
    kind: ClassVar[str] = "sync"

    def __init__(self, target: Target) -> None:
        self.target = target

    def start(self) -> None:
        pass

    def one(self, slot: int, trans_id: str) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- the floor


class _FloorConnection(asyncio.Protocol):
    """One keep-alive connection, one request in flight; responses framed by Content-Length."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._fail(ConnectionError("answer without Content-Length"))
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop > 0 else len(head)])
        total = end + 4 + length
        if len(buf) < total:
            return
        status = int(buf[9:12])
        body = bytes(buf[end + 4 : total])
        del buf[:total]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(exc or ConnectionError("connection closed by the server"))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def request(self, raw: bytes) -> asyncio.Future[tuple[int, bytes]]:
        if self.transport is None:
            raise ConnectionError("connection is closed")
        waiter = self.waiter = self.loop.create_future()
        self.transport.write(raw)
        return waiter


class Floor(AsyncDriver):
    """c connections opened up front, one per worker slot; no pool, no retries, no timeouts."""

    name = "floor"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        t = self.target
        context = t.ssl_context()
        self.conns: list[_FloorConnection] = []
        for _ in range(t.c):
            _, conn = await loop.create_connection(
                lambda: _FloorConnection(loop), t.host, t.port, ssl=context,
                server_hostname=t.host if context else None,
            )  # fmt: skip
            self.conns.append(conn)
        self.host_line = f"Host: {t.host}:{t.port}\r\n"
        _, content = await self._post(0, AUTH, vpseal.seal_request(CREDS, auth_payload()))
        self.bearer = f"Authorization: Bearer {token_from(content)}\r\n"

    def _request(self, path: str, sealed: vpseal.SealedRequest, extra: str = "") -> bytes:
        headers = "".join(f"{k}: {v}\r\n" for k, v in sealed.headers.items())
        body = sealed.body
        head = (
            f"POST {path} HTTP/1.1\r\n{self.host_line}{extra}{headers}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("latin-1") + body

    async def _post(self, slot: int, path: str, sealed: vpseal.SealedRequest) -> tuple[int, bytes]:
        return await self.conns[slot].request(self._request(path, sealed))

    async def one(self, slot: int, trans_id: str) -> int:
        raw = self._request(CASHOUT, vpseal.seal_request(CREDS, payload(trans_id)), self.bearer)
        status, content = await self.conns[slot].request(raw)
        if status != 200:
            raise ConnectionError(f"HTTP {status}")
        return answer_code(content)

    async def close(self) -> None:
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.close()


# ---------------------------------------------------------------- libraries by hand


def _pyreqwest_builder(builder: Any, target: Target) -> Any:
    """Pool sized to c and every timeout set explicitly (pyreqwest has none by default)."""
    span = timedelta(seconds=TIMEOUT)
    builder = (
        builder.max_connections(target.c)
        .pool_max_idle_per_host(target.c)
        .timeout(span)
        .connect_timeout(span)
        .read_timeout(span)
        .pool_timeout(span)
    )
    pem = target.pem()
    return builder if pem is None else builder.add_root_certificate_pem(pem)


class PyreqwestAsync(AsyncDriver):
    name = "pyreqwest"

    async def start(self) -> None:
        client_mod = _require("pyreqwest.client")
        self.client = _pyreqwest_builder(client_mod.ClientBuilder(), self.target).build()
        self.url = self.target.base_url + CASHOUT
        sealed = vpseal.seal_request(CREDS, auth_payload())
        response = await (
            self.client.post(self.target.base_url + AUTH)
            .headers(sealed.headers).body_bytes(sealed.body).build().send()
        )  # fmt: skip
        self.bearer = "Bearer " + token_from(bytes(await response.bytes()))

    async def one(self, slot: int, trans_id: str) -> int:
        headers, body = vpseal.seal_request(CREDS, payload(trans_id))
        headers["Authorization"] = self.bearer
        response = await self.client.post(self.url).headers(headers).body_bytes(body).build().send()
        content = bytes(await response.bytes())
        if response.status != 200:
            raise ConnectionError(f"HTTP {response.status}")
        return answer_code(content)

    async def close(self) -> None:
        await self.client.close()


class Aiohttp(AsyncDriver):
    name = "aiohttp"

    async def start(self) -> None:
        aiohttp = _require("aiohttp")
        context = self.target.ssl_context()
        connector = aiohttp.TCPConnector(limit=self.target.c, ssl=context if context else True)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT)
        )
        self.url = self.target.base_url + CASHOUT
        headers, body = vpseal.seal_request(CREDS, auth_payload())
        async with self.session.post(self.target.base_url + AUTH, data=body, headers=headers) as r:
            self.bearer = "Bearer " + token_from(await r.read())

    async def one(self, slot: int, trans_id: str) -> int:
        headers, body = vpseal.seal_request(CREDS, payload(trans_id))
        headers["Authorization"] = self.bearer
        async with self.session.post(self.url, data=body, headers=headers) as response:
            content = await response.read()
            if response.status != 200:
                raise ConnectionError(f"HTTP {response.status}")
        return answer_code(content)

    async def close(self) -> None:
        await self.session.close()


def _httpx_kwargs(target: Target) -> dict[str, Any]:
    import httpx

    context = target.ssl_context()
    return {
        "limits": httpx.Limits(max_connections=target.c, max_keepalive_connections=target.c),
        "timeout": TIMEOUT,
        "verify": context if context is not None else True,
    }


class HttpxAsync(AsyncDriver):
    name = "httpx"

    def seal(self, trans_id: str) -> tuple[dict[str, str], bytes]:
        return vpseal.seal_request(CREDS, payload(trans_id))

    def seal_auth(self) -> tuple[dict[str, str], bytes]:
        return vpseal.seal_request(CREDS, auth_payload())

    async def start(self) -> None:
        httpx = _require("httpx")
        self.client = httpx.AsyncClient(**_httpx_kwargs(self.target))
        self.url = self.target.base_url + CASHOUT
        headers, body = self.seal_auth()
        url = self.target.base_url + AUTH
        response = await self.client.post(url, content=body, headers=headers)
        self.bearer = "Bearer " + token_from(response.content)

    async def one(self, slot: int, trans_id: str) -> int:
        headers, body = self.seal(trans_id)
        headers["Authorization"] = self.bearer
        response = await self.client.post(self.url, content=body, headers=headers)
        if response.status_code != 200:
            raise ConnectionError(f"HTTP {response.status_code}")
        return answer_code(response.content)

    async def close(self) -> None:
        await self.client.aclose()


class PyreqwestSync(SyncDriver):
    name = "pyreqwest"

    def start(self) -> None:
        client_mod = _require("pyreqwest.client")
        self.client = _pyreqwest_builder(client_mod.SyncClientBuilder(), self.target).build()
        self.url = self.target.base_url + CASHOUT
        sealed = vpseal.seal_request(CREDS, auth_payload())
        response = (
            self.client.post(self.target.base_url + AUTH)
            .headers(sealed.headers).body_bytes(sealed.body).build().send()
        )  # fmt: skip
        self.bearer = "Bearer " + token_from(bytes(response.bytes()))

    def one(self, slot: int, trans_id: str) -> int:
        headers, body = vpseal.seal_request(CREDS, payload(trans_id))
        headers["Authorization"] = self.bearer
        response = self.client.post(self.url).headers(headers).body_bytes(body).build().send()
        content = bytes(response.bytes())
        if response.status != 200:
            raise ConnectionError(f"HTTP {response.status}")
        return answer_code(content)

    def close(self) -> None:
        self.client.close()


class HttpxSync(SyncDriver):
    name = "httpx"

    def seal(self, trans_id: str) -> tuple[dict[str, str], bytes]:
        return vpseal.seal_request(CREDS, payload(trans_id))

    def seal_auth(self) -> tuple[dict[str, str], bytes]:
        return vpseal.seal_request(CREDS, auth_payload())

    def start(self) -> None:
        httpx = _require("httpx")
        self.client = httpx.Client(**_httpx_kwargs(self.target))
        self.url = self.target.base_url + CASHOUT
        headers, body = self.seal_auth()
        response = self.client.post(self.target.base_url + AUTH, content=body, headers=headers)
        self.bearer = "Bearer " + token_from(response.content)

    def one(self, slot: int, trans_id: str) -> int:
        headers, body = self.seal(trans_id)
        headers["Authorization"] = self.bearer
        response = self.client.post(self.url, content=body, headers=headers)
        if response.status_code != 200:
            raise ConnectionError(f"HTTP {response.status_code}")
        return answer_code(response.content)

    def close(self) -> None:
        self.client.close()


# ---------------------------------------------------------------- without vpseal


def _pipeline() -> Any:
    try:
        from pipelines import CryptographyPipeline  # bench/pipelines.py
    except ImportError as exc:
        raise Skip(f"the cryptography pipeline is not importable ({exc})") from None
    from vpseal.keys import parse_api_key

    return CryptographyPipeline(DEMO_AGENT_ID, parse_api_key(DEMO_API_KEY))


class HandHttpxAsync(HttpxAsync):
    """httpx.AsyncClient + the hand-written cryptography seal: no vpseal on the request path."""

    name = "hand-httpx"

    async def start(self) -> None:
        self.pipeline = _pipeline()
        await super().start()

    def seal(self, trans_id: str) -> tuple[dict[str, str], bytes]:
        headers, body = self.pipeline.seal(payload(trans_id))
        return headers, body

    def seal_auth(self) -> tuple[dict[str, str], bytes]:
        headers, body = self.pipeline.seal(auth_payload())
        return headers, body


class HandHttpxSync(HttpxSync):
    name = "hand-httpx"

    def start(self) -> None:
        self.pipeline = _pipeline()
        super().start()

    def seal(self, trans_id: str) -> tuple[dict[str, str], bytes]:
        headers, body = self.pipeline.seal(payload(trans_id))
        return headers, body

    def seal_auth(self) -> tuple[dict[str, str], bytes]:
        headers, body = self.pipeline.seal(auth_payload())
        return headers, body


# ---------------------------------------------------------------- vpseal's clients


def _vpseal_kwargs(target: Target, http: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "agent_id": DEMO_AGENT_ID, "api_key": DEMO_API_KEY, "secret": DEMO_SECRET,
        "http": http, "max_connections": target.c, "timeout": TIMEOUT,
    }  # fmt: skip
    if target.cafile is not None:
        kwargs["verify"] = target.cafile
    return kwargs


def _construct(cls: type[Any], target: Target, http: str) -> Any:
    """vpseal's client with the gateway arguments, or Skip saying why it cannot be made."""
    try:
        return cls(target.base_url, **_vpseal_kwargs(target, http))
    except TypeError as exc:  # the http=/max_connections=/verify= arguments are not there yet
        raise Skip(f"vpseal.{cls.__name__} lacks the gateway arguments: {exc}") from None
    except vpseal.VPSealError as exc:  # e.g. the pyreqwest extra is missing on this Python
        raise Skip(f"vpseal.{cls.__name__}(http={http!r}): {exc}") from None


class VpsealAsync(AsyncDriver):
    http: ClassVar[str]

    async def start(self) -> None:
        self.client = _construct(vpseal.AsyncClient, self.target, self.http)
        await self.client.authenticate()

    async def one(self, slot: int, trans_id: str) -> int:
        try:
            await self.client.cashout(USERNAME, trans_id)
        except vpseal.APIError as exc:
            return exc.code
        return 0

    async def close(self) -> None:
        await self.client.aclose()


class VpsealAsyncHttpx(VpsealAsync):
    name = "vpseal-httpx"
    http = "httpx"


class VpsealAsyncPyreqwest(VpsealAsync):
    name = "vpseal-pyreqwest"
    http = "pyreqwest"


class VpsealSync(SyncDriver):
    http: ClassVar[str]

    def start(self) -> None:
        self.client = _construct(vpseal.Client, self.target, self.http)
        self.client.authenticate()

    def one(self, slot: int, trans_id: str) -> int:
        try:
            self.client.cashout(USERNAME, trans_id)
        except vpseal.APIError as exc:
            return exc.code
        return 0

    def close(self) -> None:
        self.client.close()


class VpsealSyncHttpx(VpsealSync):
    name = "vpseal-httpx"
    http = "httpx"


class VpsealSyncPyreqwest(VpsealSync):
    name = "vpseal-pyreqwest"
    http = "pyreqwest"


ASYNC_DRIVERS: list[type[AsyncDriver]] = [
    Floor, PyreqwestAsync, Aiohttp, HttpxAsync, HandHttpxAsync,
    VpsealAsyncHttpx, VpsealAsyncPyreqwest,
]  # fmt: skip
SYNC_DRIVERS: list[type[SyncDriver]] = [
    PyreqwestSync, HttpxSync, HandHttpxSync, VpsealSyncHttpx, VpsealSyncPyreqwest,
]  # fmt: skip
