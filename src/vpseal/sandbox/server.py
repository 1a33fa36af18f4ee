"""A local server that speaks the VP wallet API, on the standard library only.

Requests are opened with vpseal's own ``open_request`` (signature, replay guard, decryption) and
answered with the API's plain JSON envelope. Cash-outs follow the seeds: code 2 on a zero
balance, balance 0 after success, a repeated transId answers the same result (or code 3 with
``repeat="code-3"``), code 20 while another operation holds the member's wallet, code 35 for a
transId that is still being applied. Admin endpoints under ``/_admin/`` (no authentication:
the server binds to loopback by default) seed members, read the ledger and set faults.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, TypedDict
from urllib.parse import parse_qs, urlsplit

from vpseal._json import text as _json_text
from vpseal.api_errors import MESSAGES
from vpseal.envelope import Credentials, open_request
from vpseal.errors import RequestError, VPSealError
from vpseal.replay import DEFAULT_WINDOW_MS, ReplayGuard
from vpseal.sandbox.faults import AUTH, CASHOUT, QUERY, FaultPlan, FaultRule, in_phase
from vpseal.sandbox.ledger import (
    Ledger,
    LedgerTransaction,
    format_time,
    from_micros,
    to_micros,
)
from vpseal.signing import Scheme

logger = logging.getLogger("vpseal.sandbox")

# Demo-only credentials: public, printed at startup, never to be used against a real service.
DEMO_AGENT_ID = "vpseal-demo-agent"
DEMO_API_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
DEMO_SECRET = "vpseal-demo-secret-NOT-FOR-PRODUCTION"

MAX_FIELD = 64  # characters of a username or transId (longer ones: code 11)
MAX_BODY = 1 << 20
MAX_SECONDS = 600.0  # the longest lock_hold
MAX_TOKEN_TTL = 366 * 24 * 3600.0  # a year: tokens expire in ms, an int
Repeat = Literal["same-result", "code-3"]


# ------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class Agent:
    """One agent the sandbox accepts (its API KEY and Secret KEY stay out of repr)."""

    agent_id: str
    api_key: str = field(repr=False)
    secret: str = field(repr=False)


@dataclass
class SandboxConfig:
    """Everything the sandbox can be started with (all optional)."""

    host: str = "127.0.0.1"
    port: int = 0
    db: str | None = None  # None: a temporary file, removed on close
    agent_id: str = DEMO_AGENT_ID
    api_key: str = field(default=DEMO_API_KEY, repr=False)
    secret: str = field(default=DEMO_SECRET, repr=False)
    extra_agents: Sequence[Agent] = ()
    scheme: Scheme = "transfer"
    token_ttl: float = 3600.0
    replay_window_ms: int = DEFAULT_WINDOW_MS
    lock_hold: float = 0.0  # seconds a cash-out holds the wallet lock before committing
    repeat: Repeat = "same-result"
    faults: Sequence[FaultRule] = ()
    seed: int | None = None
    members: Mapping[str, Decimal | int | str] = field(default_factory=dict)


# ------------------------------------------------------------------------------ JSON out


def envelope(code: int, data: Mapping[str, Any] | None = None, message: str | None = None) -> bytes:
    doc: dict[str, Any] = {"code": code, "message": message or MESSAGES.get(code, "Error")}
    if data is not None:
        doc["data"] = data
    doc["logUUID"] = str(uuid.uuid4())
    return _json_text(doc).encode("utf-8")


# ------------------------------------------------------------------------------ tokens


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Tokens:
    """JWT-shaped HS256 tokens signed with a random per-run key: stateless to verify, and
    ``revoke_all`` (a new key) invalidates every token at once."""

    _HEADER = _b64url(b'{"alg":"HS256","typ":"JWT"}')

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._key = secrets.token_bytes(32)

    def revoke_all(self) -> None:
        self._key = secrets.token_bytes(32)

    def issue(self, agent_id: str) -> str:
        claims = {
            "sub": agent_id,
            "exp": time.time_ns() // 1_000_000 + int(self.ttl * 1000),
            "jti": secrets.token_hex(8),
        }
        body = self._HEADER + "." + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        mac = hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()
        return body + "." + _b64url(mac)

    def verify(self, token: str, agent_id: str) -> bool:
        try:
            header, claims_part, mac_part = token.split(".")
            body = header + "." + claims_part
            mac = hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()
            if not hmac.compare_digest(mac, _unb64url(mac_part)):
                return False
            claims = json.loads(_unb64url(claims_part))
        except (ValueError, UnicodeError):
            return False
        return (
            isinstance(claims, dict)
            and claims.get("sub") == agent_id
            and isinstance(claims.get("exp"), int)
            and claims["exp"] > time.time_ns() // 1_000_000
        )


# ------------------------------------------------------------------------------ the application


def valid_field(value: object) -> bool:
    """The API's rule for a username or transId: a string of 1 to MAX_FIELD characters that
    is not all blank. Requests that break it get code 11; the admin endpoint refuses it too."""
    return isinstance(value, str) and bool(value.strip()) and len(value) <= MAX_FIELD


def check_username(value: object) -> str:
    """``value`` if it is a username the API accepts (``valid_field``); ValueError otherwise."""
    if not valid_field(value):
        shown = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
        raise ValueError(
            f"username must be a string of 1 to {MAX_FIELD} characters, not blank "
            f"(the API's limit), got {shown}"
        )
    assert isinstance(value, str)
    return value


class Reply:
    """What to do with a request: answer (status, body) or drop the connection."""

    __slots__ = ("body", "content_type", "drop", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        drop: bool = False,
        content_type: str = "application/json",
    ) -> None:
        self.status = status
        self.body = body
        self.drop = drop
        self.content_type = content_type


class _Answer(Exception):
    """Ends request handling early with an API code."""

    def __init__(self, code: int) -> None:
        self.code = code


class SandboxApp:
    """The API's behaviour, independent of the HTTP server."""

    def __init__(self, config: SandboxConfig, ledger: Ledger) -> None:
        self.config = config
        self.ledger = ledger
        agents = [Agent(config.agent_id, config.api_key, config.secret), *config.extra_agents]
        self.agents = {a.agent_id: a for a in agents}
        self.keys = {a.agent_id: Credentials(a.agent_id, a.api_key, config.scheme) for a in agents}
        self.guard = ReplayGuard(config.replay_window_ms)
        self.tokens = Tokens(config.token_ttl)
        self.faults = FaultPlan(config.faults, config.seed)
        self._mu = threading.Lock()
        self._locked: set[tuple[str, str]] = set()  # wallets with an operation in flight
        self._inflight: set[tuple[str, str]] = set()  # transIds being applied
        self._stats: dict[str, int] = {}

    # -- bookkeeping

    def count(self, name: str) -> None:
        with self._mu:
            self._stats[name] = self._stats.get(name, 0) + 1

    def stats(self) -> dict[str, int]:
        with self._mu:
            return dict(self._stats)

    # -- entry point

    def handle(
        self,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        drop: Callable[[], None] | None = None,
    ) -> Reply:
        """The reply to one request. ``drop`` closes the connection at once (a "drop" fault in
        the "locked" phase calls it and carries on); without it the reply is a drop."""
        self.count(f"requests {path}")
        faults = self.faults.draw(path, ("before", "after"))
        early = self._fault_reply(faults, "before")
        if early is not None:
            return early
        try:
            if path == AUTH:
                data = self._auth(headers, body)
            else:
                agent, payload = self._open(headers, body)
                if path == CASHOUT:
                    data = self._cashout(agent, payload, faults, drop)
                else:
                    data = self._query(agent, payload)
        except _Answer as answer:
            self.count(f"code {answer.code}")
            reply = self._fault_reply(faults, "after") or Reply(200, envelope(answer.code))
        else:
            self.count("code 0")
            reply = self._fault_reply(faults, "after") or Reply(200, envelope(0, data))
        if any(rule.kind == "drop" and rule.phase == "locked" for rule in faults):
            return Reply(drop=True)  # the connection was closed while the wallet was locked
        return reply

    def _fault_reply(self, faults: list[FaultRule], phase: str) -> Reply | None:
        for rule in in_phase(faults, phase):
            self.count(f"fault {rule.kind} {phase}")
            if rule.kind == "delay":
                time.sleep(rule.seconds)
            elif rule.kind == "drop":
                return Reply(drop=True)
            elif rule.kind == "http_error":
                page = b"<html><body>upstream error</body></html>"
                return Reply(rule.status, page, False, "text/html")
            else:
                return Reply(200, envelope(rule.code))
        return None

    # -- authentication

    def _auth(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        agent_id = headers.get("x-agentid", "").strip()
        agent = self.agents.get(agent_id)
        if agent is None:
            raise _Answer(10)
        payload = self._opened(agent_id, headers, body)
        claimed, secret = payload.get("agentId"), payload.get("secret")
        if not isinstance(claimed, str) or not isinstance(secret, str) or not claimed:
            raise _Answer(11)
        if claimed != agent_id or not hmac.compare_digest(
            secret.encode("utf-8"), agent.secret.encode("utf-8")
        ):
            raise _Answer(83)
        ttl = self.config.token_ttl
        expires: int | Decimal = int(ttl) if ttl == int(ttl) else Decimal(str(ttl))
        return {
            "accessToken": self.tokens.issue(agent_id),
            "expiresIn": expires,
            "tokenType": "Bearer",
        }

    def _open(self, headers: Mapping[str, str], body: bytes) -> tuple[str, dict[str, Any]]:
        agent_id = headers.get("x-agentid", "").strip()
        scheme, _, token = headers.get("authorization", "").strip().partition(" ")
        if (
            agent_id not in self.keys
            or scheme.lower() != "bearer"
            or not self.tokens.verify(token.strip(), agent_id)
        ):
            raise _Answer(83)
        return agent_id, self._opened(agent_id, headers, body)

    def _opened(self, agent_id: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        try:
            return open_request(self.keys[agent_id], headers, body, guard=self.guard).payload
        except RequestError as exc:
            raise _Answer(exc.api_code) from None
        except VPSealError as exc:
            raise _Answer(exc.api_code or 11) from None

    # -- business

    @staticmethod
    def _fields(payload: Mapping[str, Any]) -> tuple[str, str]:
        username, trans_id = payload.get("username"), payload.get("transId")
        for value in (username, trans_id):
            if not valid_field(value):
                raise _Answer(11)
        assert isinstance(username, str) and isinstance(trans_id, str)
        return username, trans_id

    def _cashout(
        self,
        agent: str,
        payload: Mapping[str, Any],
        faults: list[FaultRule],
        drop: Callable[[], None] | None,
    ) -> dict[str, Any]:
        username, trans_id = self._fields(payload)
        existing = self.ledger.find(agent, trans_id)
        if existing is not None:
            return self._repeat(existing, username)
        wallet, tx_key = (agent, username), (agent, trans_id)
        with self._mu:
            if tx_key in self._inflight:
                raise _Answer(35)
            if wallet in self._locked:
                raise _Answer(20)
            if self.ledger.member(agent, username) is None:
                raise _Answer(8)
            self._locked.add(wallet)
            self._inflight.add(tx_key)
        try:
            for rule in self.faults.draw(CASHOUT, ("locked",)):
                self.count(f"fault {rule.kind} locked")
                if rule.kind == "drop":  # the client loses its answer; the cash-out goes on
                    faults.append(rule)
                    if drop is not None:
                        drop()
                else:
                    time.sleep(rule.seconds)
            if self.config.lock_hold:
                time.sleep(self.config.lock_hold)
            outcome = self.ledger.cashout(agent, username, trans_id)
        finally:
            with self._mu:
                self._locked.discard(wallet)
                self._inflight.discard(tx_key)
        if outcome.code != 0:
            raise _Answer(outcome.code)
        assert outcome.transaction is not None
        if outcome.repeat:
            return self._repeat(outcome.transaction, username)
        self.count("cashouts applied")
        return _cashout_data(outcome.transaction)

    def _repeat(self, tx: LedgerTransaction, username: str) -> dict[str, Any]:
        if tx.kind != "cashout" or tx.username != username or self.config.repeat == "code-3":
            raise _Answer(3)
        self.count("cashouts repeated")
        return _cashout_data(tx)

    def _query(self, agent: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        username, trans_id = self._fields(payload)
        if self.ledger.member(agent, username) is None:
            raise _Answer(8)
        with self._mu:
            if (agent, trans_id) in self._inflight:
                raise _Answer(35)
        tx = self.ledger.find(agent, trans_id)
        if tx is None or tx.username != username:
            raise _Answer(4)
        return {
            "agent": tx.agent,
            "transId": tx.trans_id,
            "transactionTime": format_time(tx.created_ms),
            "amount": from_micros(tx.amount),
            "username": tx.username,
        }


def _cashout_data(tx: LedgerTransaction) -> dict[str, Any]:
    return {"amount": from_micros(-tx.amount), "balance": from_micros(tx.balance_after)}


# ------------------------------------------------------------------------------ HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vpseal-sandbox"
    sys_version = ""
    timeout = 30  # idle keep-alive connections end, so their threads do too
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and body leave in one write (flushed after each request)
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def setup(self) -> None:
        super().setup()
        self.server.sandbox.app.count("connections")  # how well clients keep them alive

    def _write(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) before the answer
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
            self.close_connection = True
            self._write(411 if length is None else 413, envelope(11))
            return None
        return self.rfile.read(int(length))

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        self._answer("POST", body)

    def do_GET(self) -> None:
        self._answer("GET", b"")

    def do_DELETE(self) -> None:
        self._answer("DELETE", b"")

    def _answer(self, method: str, body: bytes) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.sandbox.respond(method, self.path, headers, body, self._drop)
        if reply.drop:
            self._drop()
            return
        self._write(reply.status, reply.body, reply.content_type)

    def _drop(self) -> None:
        """Close the connection without an answer (a "drop" fault)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closes or resets its connection (a kept-alive one it no longer needs,
        or one it gave up on) is normal: one debug line. Anything else is a sandbox bug."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            logger.debug("client %s closed its connection (%s)", client_address, type(exc).__name__)
        else:
            logger.error("sandbox failed on a request from %s", client_address, exc_info=exc)


# ------------------------------------------------------------------------------ the sandbox


class ClientKwargs(TypedDict):
    """Keyword arguments that connect vpseal.Client / AsyncClient to a sandbox."""

    base_url: str
    agent_id: str
    api_key: str
    secret: str


class Sandbox:
    """The server with its ledger. ``with Sandbox() as sb:`` serves on an ephemeral loopback
    port in a background thread; ``sb.base_url`` and ``sb.client_kwargs()`` connect a client."""

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        config = config or SandboxConfig()
        for name, value in overrides.items():
            if not hasattr(config, name):
                raise TypeError(f"unknown sandbox option {name!r}")
            setattr(config, name, value)
        _check_config(config)
        self.config = config
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if config.db is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="vpseal-sandbox-")
            db_path = os.path.join(self._tempdir.name, "ledger.sqlite3")
        else:
            db_path = config.db
        self.db_path = Path(db_path)
        try:
            self.ledger = Ledger(db_path)
        except sqlite3.Error as exc:
            self._cleanup()
            raise LedgerOpenError(db_path, exc) from exc
        except BaseException:
            self._cleanup()
            raise
        try:
            self.app = SandboxApp(config, self.ledger)
            for username, balance in config.members.items():
                try:
                    self.set_member(username, balance)
                except ValueError as exc:
                    raise ValueError(f"member {str(username)[:MAX_FIELD]!r}: {exc}") from None
        except BaseException:
            self.ledger.close()
            self._cleanup()
            raise
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._busy = 0
        self._busy_cond = threading.Condition()

    def __repr__(self) -> str:
        url = self.base_url if self._server is not None else None
        return f"Sandbox(base_url={url!r}, agent_id={self.config.agent_id!r})"

    # -- lifecycle

    def bind(self) -> Sandbox:
        """Open the listening socket (port 0: an ephemeral one) without serving yet."""
        if self._server is None:
            self._server = _Server((self.config.host, self.config.port), self)
        return self

    def start(self) -> Sandbox:
        """Serve in a daemon thread."""
        self.bind()
        assert self._server is not None
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                args=(0.05,),  # poll interval: close() returns within 50 ms
                name="vpseal-sandbox",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (the CLI)."""
        self.bind()
        assert self._server is not None
        try:
            self._server.serve_forever()
        finally:
            self.close()

    def close(self, wait: float = 5.0) -> None:
        """Stop serving, let requests in progress finish (up to ``wait`` s), close the ledger."""
        server, self._server = self._server, None
        if server is not None:
            if self._thread is not None:
                server.shutdown()
                self._thread.join()
                self._thread = None
            server.server_close()
        with self._busy_cond:
            self._busy_cond.wait_for(lambda: self._busy == 0, timeout=wait)
        self.ledger.close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def busy(self) -> _Busy:
        return _Busy(self)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being handled (e.g. a delayed one that its client gave up
        on and that may still commit); False if that did not happen within ``timeout``."""
        with self._busy_cond:
            return self._busy_cond.wait_for(lambda: self._busy == 0, timeout=timeout)

    # -- connecting

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("sandbox is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = self.config.host
        host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def client_kwargs(self) -> ClientKwargs:
        """Arguments for vpseal.Client / AsyncClient (they contain the agent's secrets)."""
        return {
            "base_url": self.base_url,
            "agent_id": self.config.agent_id,
            "api_key": self.config.api_key,
            "secret": self.config.secret,
        }

    def client_env(self) -> dict[str, str]:
        """The same as VPSEAL_* environment variables."""
        kw = self.client_kwargs()
        return {
            "VPSEAL_BASE_URL": kw["base_url"],
            "VPSEAL_AGENT_ID": kw["agent_id"],
            "VPSEAL_API_KEY": kw["api_key"],
            "VPSEAL_SECRET": kw["secret"],
        }

    # -- ledger and faults, for tests and the admin endpoint

    def set_member(
        self,
        username: str,
        balance: Decimal | int | str,
        *,
        blocked: bool = False,
        agent: str | None = None,
    ) -> None:
        """Create or update a member. ValueError for a username the API would refuse (see
        ``valid_field``) or a balance that is negative, has more than 6 decimal places or is
        implausibly large (see ``to_micros``)."""
        micros = to_micros(balance)
        self.ledger.set_member(
            agent or self.config.agent_id, check_username(username), micros, blocked=blocked
        )

    def balance(self, username: str, agent: str | None = None) -> Decimal | None:
        member = self.ledger.member(agent or self.config.agent_id, username)
        return None if member is None else from_micros(member[0])

    def transactions(
        self, username: str | None = None, agent: str | None = None
    ) -> list[LedgerTransaction]:
        return self.ledger.history(agent or self.config.agent_id, username)

    def totals(self, agent: str | None = None) -> dict[str, object]:
        return self.ledger.totals(agent)

    def set_faults(self, rules: Sequence[FaultRule]) -> None:
        self.app.faults.replace(rules)

    def add_fault(self, rule: FaultRule) -> FaultRule:
        self.app.faults.add(rule)
        return rule

    def clear_faults(self) -> None:
        self.app.faults.replace(())

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (clients then get code 83 and renew)."""
        self.app.tokens.revoke_all()

    def stats(self) -> dict[str, int]:
        """Counters: 'requests <path>', 'code <n>', 'fault <kind> <phase>', 'cashouts applied',
        'connections' (accepted)."""
        return self.app.stats()

    # -- the application: one request in, one reply out (the HTTP server and the in-process
    # transport both call this)

    def respond(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        drop: Callable[[], None] | None = None,
    ) -> Reply:
        """The reply to one request: ``target`` is the path with its query string, ``headers``
        have lower-case names. Admin requests under ``/_admin/``; API requests are POSTs to the
        three API paths; a failure inside the sandbox is answered with code 7, never a
        traceback. ``drop``: see ``SandboxApp.handle``."""
        url = urlsplit(target)
        path = url.path
        with self.busy():
            if path.startswith("/_admin/") or method == "DELETE":
                status, out = self.admin(method, path, url.query, body)
                return Reply(status, out)
            if method != "POST":
                return Reply(405, envelope(11))
            if path not in (AUTH, CASHOUT, QUERY):
                return Reply(404, envelope(11))
            try:
                return self.app.handle(path, headers, body, drop)
            except Exception:  # never leak a traceback to the client; answer code 7
                logger.exception("sandbox failed on %s", path)
                return Reply(200, envelope(7))

    # -- admin HTTP endpoint

    def admin(self, method: str, path: str, query: str, body: bytes) -> tuple[int, bytes]:
        """(HTTP status, JSON body) for an admin request; an error is {"error": one line}."""
        try:
            return 200, _json_text(self._admin(method, path, parse_qs(query), body)).encode("utf-8")
        except LookupError as exc:
            return 404, _json_text({"error": str(exc)}).encode("utf-8")
        except (ValueError, TypeError) as exc:
            return 400, _json_text({"error": str(exc)}).encode("utf-8")
        except ArithmeticError:  # a JSON number beyond Decimal's range: 1e99999999999999999999
            return 400, _json_text({"error": "a number in the request is out of range"}).encode()
        except Exception as exc:
            logger.exception("sandbox admin request %s %s failed", method, path)
            failure = {"error": f"internal error: {type(exc).__name__}"}
            return 500, _json_text(failure).encode("utf-8")

    def _admin(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Any:
        doc: Any = (
            json.loads(body, parse_float=Decimal, parse_int=_json_int) if body.strip() else {}
        )
        agent = query.get("agent", [self.config.agent_id])[0]
        if path == "/_admin/members" and method == "POST":
            items = doc if isinstance(doc, list) else [doc]
            members = []
            for item in items:  # all checked before any is written
                if not isinstance(item, dict) or "username" not in item:
                    raise ValueError('expected {"username": str, "balance": number}')
                username = check_username(item["username"])
                try:
                    micros = to_micros(item.get("balance", 0))
                except ValueError as exc:
                    raise ValueError(f"balance of {username!r}: {exc}") from None
                if micros < 0:
                    raise ValueError(f"balance of {username!r} must be >= 0")
                members.append((username, from_micros(micros), bool(item.get("blocked"))))
            for username, amount, blocked in members:
                self.set_member(username, amount, blocked=blocked, agent=agent)
            return {"ok": True, "members": len(items)}
        if path.startswith("/_admin/members/") and method == "GET":
            username = path[len("/_admin/members/") :]
            balance = self.balance(username, agent)
            if balance is None:
                raise LookupError("no such member")
            history = [_tx_json(tx) for tx in self.transactions(username, agent)]
            return {"username": username, "balance": balance, "transactions": history}
        if path == "/_admin/ledger" and method == "GET":
            result = dict(self.totals(agent))
            if query.get("detail", ["0"])[0] not in ("", "0"):
                result["transactionList"] = [_tx_json(tx) for tx in self.transactions(None, agent)]
            return result
        if path == "/_admin/faults":
            if method == "POST":
                items = doc.get("rules", [doc]) if isinstance(doc, dict) else doc
                if not isinstance(items, list):
                    raise ValueError('expected a fault rule, a list of them or {"rules": [...]}')
                rules = [FaultRule.from_dict(item) for item in items]
                if query.get("mode", ["replace"])[0] == "add":
                    for rule in rules:
                        self.add_fault(rule)
                else:
                    self.set_faults(rules)
            elif method == "DELETE":
                self.clear_faults()
            return {"rules": [rule.to_dict() for rule in self.app.faults.rules()]}
        if path == "/_admin/tokens/revoke" and method == "POST":
            self.revoke_tokens()
            return {"ok": True}
        if path == "/_admin/stats" and method == "GET":
            return self.stats()
        raise LookupError(f"no admin endpoint {method} {path}")


def _json_int(text: str) -> int | Decimal:
    """A JSON integer: an int, or a Decimal when it is too long for one (then refused where
    an amount or a count is checked, instead of by int()'s digit limit)."""
    return int(text) if len(text) <= 40 else Decimal(text)


class LedgerOpenError(OSError):
    """The ledger file cannot be opened (missing directory, no permission, not a database)."""

    def __init__(self, path: str, cause: sqlite3.Error) -> None:
        self.path = path
        reason = str(cause)
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            reason = f"directory {parent} does not exist"
        elif os.path.isdir(path):
            reason = "it is a directory"
        super().__init__(f"cannot open the ledger {path}: {reason}")


def _check_config(config: SandboxConfig) -> None:
    """ValueError naming the first option that cannot work (before anything is opened)."""
    port = config.port
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be 0-65535 (0: any free port), got {port!r}")
    for name, low, high in (("token_ttl", 0.001, MAX_TOKEN_TTL), ("lock_hold", 0.0, MAX_SECONDS)):
        value = getattr(config, name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{name} must be a number of seconds within [{low:g}, {high:.0f}]")
    if config.repeat not in ("same-result", "code-3"):
        raise ValueError("repeat must be 'same-result' or 'code-3'")
    for rule in config.faults:
        if not isinstance(rule, FaultRule):
            raise TypeError("faults must be FaultRule objects")


def _tx_json(tx: LedgerTransaction) -> dict[str, Any]:
    return {
        "transId": tx.trans_id,
        "username": tx.username,
        "kind": tx.kind,
        "amount": from_micros(tx.amount),
        "balanceAfter": from_micros(tx.balance_after),
        "transactionTime": format_time(tx.created_ms),
    }


class _Busy:
    """Counts requests in progress so that close() can wait for them."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def __enter__(self) -> None:
        with self._sandbox._busy_cond:
            self._sandbox._busy += 1

    def __exit__(self, *exc: object) -> None:
        with self._sandbox._busy_cond:
            self._sandbox._busy -= 1
            self._sandbox._busy_cond.notify_all()
