"""Clients for the VP wallet API: token, cash-out and transaction query.

``Client`` and ``AsyncClient`` only drive: each asks a flow from ``_client_core`` what to do
next, has its HTTP option (``_http``: httpx by default, pyreqwest for gateways) send it, and
reports the outcome back, so retries, settling and parsing are written once for every option.
Every attempt is sealed afresh (timestamp, nonce, IV, signature) while the transId stays the
same; that is why retries live above the HTTP library rather than in it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from vpseal import _client_core as core
from vpseal._client_core import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    QUERY_PATH,
    CashoutFlow,
    CashoutResult,
    Done,
    Flow,
    Raise,
    RetryPolicy,
    Send,
    Settings,
    SimpleFlow,
    Token,
    TokenCache,
    TokenFlow,
    Transaction,
)
from vpseal._http import (
    DEFAULT_MAX_CONNECTIONS,
    USE_DEFAULT_TIMEOUT,
    AsyncHTTP,
    HTTPConfig,
    SyncHTTP,
    Verify,
    async_http,
    sync_http,
)
from vpseal.errors import ConfigError, VPSealError
from vpseal.signing import Scheme
from vpseal.tokens import MemoryTokenStore, TokenStore, store_key

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
Timeout = float | None  # or an httpx.Timeout with http="httpx"

# Which HTTP option a client uses when none is named (the tests run every option through it).
default_http = "httpx"


class _Base:
    """Configuration and state both clients share."""

    _settings: Settings
    _tokens: TokenCache
    _store: TokenStore
    _store_key: str
    _http_config: HTTPConfig

    def _configure(
        self,
        base_url: str | None,
        agent_id: str | None,
        api_key: str | None,
        secret: str | None,
        scheme: Scheme,
        timeout: Any,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        max_connections: int,
        verify: Verify,
        token_store: TokenStore | None,
    ) -> None:
        policy = RetryPolicy(max_retries, backoff_base, backoff_max)
        self._settings = core.resolve_settings(
            base_url, agent_id, api_key, secret, scheme, policy
        )
        self._http_config = HTTPConfig(timeout, max_connections, verify)
        self._tokens = TokenCache()
        self._store = MemoryTokenStore() if token_store is None else token_store
        self._pid = os.getpid()
        self._store_key = store_key(self._settings.base_url, self.agent_id)

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    @property
    def agent_id(self) -> str:
        return self._settings.credentials.agent_id

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, agent_id={self.agent_id!r}, "
            f"api_key=<hidden>, secret=<hidden>, scheme={self._settings.credentials.scheme!r})"
        )

    def _check_process(self) -> None:
        """A client's connections (and pyreqwest's runtime threads) belong to the process that
        made it: used in a forked child, it would share sockets with its parent or hang."""
        if os.getpid() != self._pid:
            raise ConfigError(
                f"this {type(self).__name__} was created in process {self._pid}; create one "
                "client per process, after fork (share the token with a RedisTokenStore)"
            )

    def _token_flow(self, refused: str | None) -> TokenFlow:
        """Fetching a token takes at most every attempt's timeout plus the backoff between
        them; the store's lock lasts that long, and waiting for another holder twice that."""
        policy = self._settings.retry
        per_try = _seconds(self._http_config.timeout)
        lock_ttl = (policy.max_retries + 1) * per_try + policy.max_retries * policy.backoff_max + 1
        return TokenFlow(
            self._settings, self._store, self._store_key, refused, lock_ttl, 2 * lock_ttl
        )

    def _cashout_flow(self, username: str, trans_id: str | None) -> CashoutFlow:
        tid = core.new_trans_id() if trans_id is None else trans_id
        return CashoutFlow(username, tid, self._settings.retry)

    def _query_flow(self, username: str, trans_id: str) -> SimpleFlow[Transaction]:
        payload = core.member_payload(username, trans_id)
        return SimpleFlow(QUERY_PATH, payload, self._settings.retry, core.parse_transaction, True)


def _option(http: str | None, http_client: object) -> str:
    """The named option; else httpx for a given httpx client; else the default."""
    if http is not None:
        return http
    return "httpx" if http_client is not None else default_http


def _seconds(timeout: Any) -> float:
    """A per-request time bound for planning (the token lock): 60 s where none is set."""
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
        return float(timeout)
    if timeout is USE_DEFAULT_TIMEOUT:
        return DEFAULT_TIMEOUT
    parts = [getattr(timeout, name, None) for name in ("connect", "read", "write", "pool")]
    known = [p for p in parts if isinstance(p, (int, float))]
    return float(sum(known)) if known else 60.0


_CLIENT_DOC = """

    ``http``: "httpx" (default) or "pyreqwest" (``pip install 'vpseal[pyreqwest]'``, Python
    3.11+: a fraction of httpx's CPU per request, for gateways); both behave the same.
    ``timeout``: seconds for each request (default 10 s, or the given ``http_client``'s own;
    with httpx also an ``httpx.Timeout``); ``None``: no timeout. ``max_connections``: the pool
    size, all kept alive (size it to your concurrency). ``verify``: True, False, a CA bundle
    path, or an ``ssl.SSLContext`` (httpx). ``token_store``: share the token with other
    clients or processes (``vpseal.RedisTokenStore``); by default each client has its own.
    """


class Client(_Base):
    """Synchronous client. Thread-safe: share one across threads (one token for all)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        agent_id: str | None = None,
        api_key: str | None = None,
        secret: str | None = None,
        scheme: Scheme = "transfer",
        timeout: float | httpx.Timeout | None = USE_DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        http: str | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        verify: Verify = True,
        token_store: TokenStore | None = None,
    ) -> None:
        self._configure(
            base_url, agent_id, api_key, secret, scheme, timeout, max_retries,
            backoff_base, backoff_max, max_connections, verify, token_store,
        )  # fmt: skip
        self._http: SyncHTTP = sync_http(_option(http, http_client), self._http_config, http_client)
        self._token_lock = threading.Lock()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (only if this client created it)."""
        self._http.close()

    def cashout(self, username: str, trans_id: str | None = None) -> CashoutResult:
        """Withdraw the member's whole balance. Never cashes out twice; raises OutcomeUnknown
        (with the trans_id) when retries cannot tell whether it happened."""
        return self._drive(self._cashout_flow(username, trans_id))

    def check_transaction(self, username: str, trans_id: str) -> Transaction:
        """Query one transaction (TransactionNotFound, code 4, if it never happened)."""
        return self._drive(self._query_flow(username, trans_id))

    def authenticate(self) -> None:
        """Fetch a token now (otherwise the first call does); raises on bad credentials."""
        self._token(None)

    # -- I/O

    def _token(self, stale: int | None) -> tuple[str, int]:
        got = self._tokens.get(stale)
        if got is not None:
            return got
        with self._token_lock:  # single flight: one caller fetches, the others reuse it
            got = self._tokens.get(stale)
            if got is not None:
                return got
            token: Token = self._drive(self._token_flow(self._tokens.refused(stale)))
            return self._tokens.store(token)

    def _drive(self, flow: Flow[T]) -> T:
        self._check_process()
        step = flow.start()
        generation: int | None = None
        while True:
            if isinstance(step, Send):
                if step.reason:
                    core.log_retry(step)
                if step.delay > 0:
                    time.sleep(step.delay)
                token = None
                if step.authenticated:
                    try:
                        token, generation = self._token(
                            generation if step.renew_token else None
                        )
                    except VPSealError as exc:
                        step = flow.on_auth_failure(exc)
                        continue
                prepared = core.prepare(self._settings, step.path, step.payload, token)
                started = time.perf_counter()
                outcome = self._http.post(prepared)
                core.log_attempt(step, outcome, time.perf_counter() - started)
                step = flow.on_outcome(outcome)
            elif isinstance(step, Done):
                return step.value
            elif isinstance(step, Raise):
                raise step.error from step.cause
            else:
                time.sleep(step.delay)
                step = flow.on_wait()


Client.__doc__ = (Client.__doc__ or "") + _CLIENT_DOC


class AsyncClient(_Base):
    """Asynchronous client with the same arguments and methods as Client."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        agent_id: str | None = None,
        api_key: str | None = None,
        secret: str | None = None,
        scheme: Scheme = "transfer",
        timeout: float | httpx.Timeout | None = USE_DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        http: str | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        verify: Verify = True,
        token_store: TokenStore | None = None,
    ) -> None:
        self._configure(
            base_url, agent_id, api_key, secret, scheme, timeout, max_retries,
            backoff_base, backoff_max, max_connections, verify, token_store,
        )  # fmt: skip
        self._http: AsyncHTTP = async_http(
            _option(http, http_client), self._http_config, http_client
        )
        self._token_lock = asyncio.Lock()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (only if this client created it)."""
        await self._http.aclose()

    async def cashout(self, username: str, trans_id: str | None = None) -> CashoutResult:
        """See Client.cashout."""
        return await self._drive(self._cashout_flow(username, trans_id))

    async def check_transaction(self, username: str, trans_id: str) -> Transaction:
        """See Client.check_transaction."""
        return await self._drive(self._query_flow(username, trans_id))

    async def authenticate(self) -> None:
        """See Client.authenticate."""
        await self._token(None)

    # -- I/O

    async def _token(self, stale: int | None) -> tuple[str, int]:
        got = self._tokens.get(stale)
        if got is not None:
            return got
        async with self._token_lock:
            got = self._tokens.get(stale)
            if got is not None:
                return got
            token: Token = await self._drive(self._token_flow(self._tokens.refused(stale)))
            return self._tokens.store(token)

    async def _drive(self, flow: Flow[T]) -> T:
        self._check_process()
        step = flow.start()
        generation: int | None = None
        while True:
            if isinstance(step, Send):
                if step.reason:
                    core.log_retry(step)
                if step.delay > 0:
                    await asyncio.sleep(step.delay)
                token = None
                if step.authenticated:
                    try:
                        token, generation = await self._token(
                            generation if step.renew_token else None
                        )
                    except VPSealError as exc:
                        step = flow.on_auth_failure(exc)
                        continue
                prepared = core.prepare(self._settings, step.path, step.payload, token)
                started = time.perf_counter()
                outcome = await self._http.post(prepared)
                core.log_attempt(step, outcome, time.perf_counter() - started)
                step = flow.on_outcome(outcome)
            elif isinstance(step, Done):
                return step.value
            elif isinstance(step, Raise):
                raise step.error from step.cause
            else:
                await asyncio.sleep(step.delay)
                step = flow.on_wait()


AsyncClient.__doc__ = (AsyncClient.__doc__ or "") + _CLIENT_DOC

__all__ = ["AsyncClient", "CashoutResult", "Client", "Transaction"]
