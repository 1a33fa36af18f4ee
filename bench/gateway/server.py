"""A fast loopback VP wallet API server for the gateway benchmark (bench/test_gateway.py).

    python bench/gateway/server.py --port 0 [--tls CERT KEY] [--no-verify] [--loop asyncio]

Prints its port on the first line of stdout, then serves until killed. It is not the sandbox:
no ledger and no faults, only what a client needs to be measured: a raw asyncio ``Protocol``
with a minimal HTTP/1.1 parser (keep-alive, Content-Length), on uvloop when it is importable,
so that one core of it outruns any client under test. By default every request is still opened
with vpseal's ``open_request`` (signature, replay guard, decryption), so a client that sends
wrong bytes fails the benchmark instead of looking fast; ``--no-verify`` skips that on the
cash-out path only (the scaling benchmark wants the server as cheap as possible).

``GET /_stats`` answers the counters and the server's own CPU time, so the harness can tell
whether the server kept up (its CPU time over a round, divided by the round's wall time).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import secrets
import ssl
import sys
import time
import uuid
from typing import Any, cast

import vpseal
from vpseal.sandbox import DEMO_AGENT_ID, DEMO_API_KEY, DEMO_SECRET

AUTH = "/v2/auth"
CASHOUT = "/v2/members/cashout"
QUERY = "/v2/members/check/transactions"
MAX_HEAD = 64 * 1024
MAX_BODY = 1 << 20
TRANSACTION_TIME = "2025-01-29T10:00:00.000Z"

_STATUS = {200: b"OK", 404: b"Not Found", 411: b"Length Required", 413: b"Too Large"}


# logUUIDs: one random uuid4's first 24 characters, then a counter (unique, uuid4-shaped, and a
# tenth of uuid4()'s cost, which is the server's to save: it must outrun every client)
_LOG_PREFIX = str(uuid.uuid4())[:24]
_log_ids = itertools.count()


def log_uuid() -> str:
    return f"{_LOG_PREFIX}{next(_log_ids):012x}"


def _envelope(code: int, message: str, data: dict[str, Any] | None = None) -> bytes:
    doc: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        doc["data"] = data
    doc["logUUID"] = log_uuid()
    return json.dumps(doc, separators=(",", ":")).encode()


def _refusal(code: int) -> bytes:
    messages = {83: "Authentication Failed", 84: "Decryption Failed", 11: "Parameters error"}
    return _envelope(code, messages.get(code, "Internal server error"))


class Stats:
    """Counters the harness reads through ``GET /_stats``."""

    __slots__ = ("by_path", "connections", "open_connections", "refused", "requests", "verified")

    def __init__(self) -> None:
        self.requests = 0
        self.verified = 0
        self.refused = 0
        self.connections = 0
        self.open_connections = 0
        self.by_path: dict[str, int] = {}

    def as_json(self, verify: bool, loop: str, tls: bool) -> bytes:
        return json.dumps(
            {
                "requests": self.requests,
                "verified": self.verified,
                "refused": self.refused,
                "connections": self.connections,
                "open_connections": self.open_connections,
                "by_path": self.by_path,
                "cpu": time.process_time(),
                "wall": time.perf_counter(),
                "verify": verify,
                "loop": loop,
                "tls": tls,
            }
        ).encode()


class App:
    """The three endpoints, with vpseal opening each request unless told not to."""

    def __init__(self, verify: bool, loop_name: str, tls: bool) -> None:
        self.verify = verify
        self.loop_name = loop_name
        self.tls = tls
        self.creds = vpseal.Credentials(DEMO_AGENT_ID, DEMO_API_KEY)
        self.guard = vpseal.ReplayGuard()
        self.tokens: set[str] = set()
        self.stats = Stats()
        # everything of the cash-out answer but the logUUID, written once
        self._cashout_head = (
            b'{"code":0,"message":"Success","data":{"amount":12.5,"balance":0},"logUUID":"'
        )

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        """The answer body (always HTTP 200, as the real API does; the outcome is in code)."""
        if method == "GET" and path == "/_stats":
            return self.stats.as_json(self.verify, self.loop_name, self.tls)
        stats = self.stats
        stats.requests += 1
        stats.by_path[path] = stats.by_path.get(path, 0) + 1
        try:
            if method != "POST":
                raise _Refused(11)
            if path == CASHOUT:
                self._bearer(headers)
                if self.verify and not isinstance(self._open(headers, body).get("transId"), str):
                    raise _Refused(11)
                return self._cashout_head + log_uuid().encode() + b'"}'
            if path == QUERY:  # opened even with --no-verify: it echoes the request, and is rare
                self._bearer(headers)
                payload = self._open(headers, body)
                data = {
                    "agent": DEMO_AGENT_ID,
                    "transId": payload.get("transId"),
                    "transactionTime": TRANSACTION_TIME,
                    "amount": -12.5,  # json writes it as -12.5, a JSON number
                    "username": payload.get("username"),
                }
                return _envelope(0, "Success", data)
            if path == AUTH:
                payload = self._open(headers, body)
                if payload.get("agentId") != DEMO_AGENT_ID or payload.get("secret") != DEMO_SECRET:
                    raise _Refused(83)
                token = secrets.token_urlsafe(32)
                self.tokens.add(token)
                return _envelope(
                    0, "Success", {"accessToken": token, "expiresIn": 3600, "tokenType": "Bearer"}
                )
            raise _Refused(11)
        except _Refused as refused:
            stats.refused += 1
            return _refusal(refused.code)

    def _bearer(self, headers: dict[str, str]) -> None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            raise _Refused(83)

    def _open(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """The opened payload; a request vpseal refuses is answered with its API code."""
        try:
            opened = vpseal.open_request(self.creds, headers, body, guard=self.guard)
        except vpseal.VPSealError as exc:
            raise _Refused(getattr(exc, "api_code", None) or 11) from None
        self.stats.verified += 1
        return opened.payload


class _Refused(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class HTTPProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining; bodies by Content-Length only."""

    __slots__ = ("app", "buf", "transport")

    def __init__(self, app: App) -> None:
        self.app = app
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.app.stats.connections += 1
        self.app.stats.open_connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.app.stats.open_connections -= 1
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        out: list[bytes] = []
        close = False
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                close = len(buf) > MAX_HEAD
                break
            lines = buf[:end].decode("latin-1").split("\r\n")
            method, _, rest = lines[0].partition(" ")
            path, _, version = rest.partition(" ")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "transfer-encoding" in headers:
                out.append(_response(411, _refusal(11)))
                close = True
                break
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit() or int(length_text) > MAX_BODY:
                out.append(_response(413, _refusal(11)))
                close = True
                break
            length = int(length_text)
            start = end + 4
            if len(buf) < start + length:
                break
            body = bytes(buf[start : start + length])
            del buf[: start + length]
            out.append(_response(200, self.app.handle(method, path, headers, body)))
            if version != "HTTP/1.1" or headers.get("connection", "").lower() == "close":
                close = True
                break
        transport = self.transport
        if transport is None:
            return
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if close:
            transport.close()


def _response(status: int, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        % (status, _STATUS[status], len(body))
        + body
    )


def new_loop(name: str) -> tuple[asyncio.AbstractEventLoop, str]:
    """uvloop when asked for ("auto" or "uvloop") and importable, else asyncio's own loop."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise
        else:
            return uvloop.new_event_loop(), "uvloop"
    return asyncio.new_event_loop(), "asyncio"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--no-verify", action="store_true", help="do not open cash-outs")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    args = parser.parse_args(argv)

    loop, loop_name = new_loop(args.loop)
    asyncio.set_event_loop(loop)
    context = None
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls[0], args.tls[1])
    app = App(not args.no_verify, loop_name, context is not None)
    server = loop.run_until_complete(
        loop.create_server(
            lambda: HTTPProtocol(app), args.host, args.port, ssl=context, backlog=1024
        )
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    print(
        f"gateway bench server on {args.host}:{port} ({loop_name}, "
        f"{'TLS' if context else 'plain'}, verify={'on' if app.verify else 'off'})",
        file=sys.stderr,
        flush=True,
    )
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        loop.close()


if __name__ == "__main__":
    main()
