"""httpx clients for the VP wallet API: token, cash-out and transaction query.

``Client`` and ``AsyncClient`` only do I/O: each asks a flow from ``_client_core`` what to do
next, sends, and reports the outcome back, so retries, settling and parsing are written once.
Every attempt is sealed afresh (timestamp, nonce, IV, signature) while the transId stays the
same; that is why retries live above ``send()`` rather than in an httpx transport.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType
from typing import TypeVar

import httpx

from vpseal import _client_core as core
from vpseal._client_core import (
    AUTH_PATH,
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    QUERY_PATH,
    CashoutFlow,
    CashoutResult,
    Done,
    Flow,
    Outcome,
    Raise,
    RetryPolicy,
    Send,
    Settings,
    SimpleFlow,
    Token,
    TokenCache,
    Transaction,
)
from vpseal.errors import VPSealError
from vpseal.signing import Scheme

T = TypeVar("T")
_UNSET: float = -1.0


class _Base:
    """Configuration and state both clients share."""

    _settings: Settings
    _tokens: TokenCache
    _owns_http: bool

    def _configure(
        self,
        base_url: str | None,
        agent_id: str | None,
        api_key: str | None,
        secret: str | None,
        scheme: Scheme,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
        own_http: bool,
    ) -> None:
        if timeout is _UNSET:
            timeout = DEFAULT_TIMEOUT if own_http else None  # a given client keeps its own
        elif timeout is None:
            timeout = httpx.Timeout(None)  # as in httpx: explicitly no timeout
        policy = RetryPolicy(max_retries, backoff_base, backoff_max)
        self._settings = core.resolve_settings(
            base_url, agent_id, api_key, secret, scheme, timeout, policy
        )
        self._tokens = TokenCache()
        self._owns_http = own_http

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

    def _token_flow(self) -> SimpleFlow[Token]:
        s = self._settings
        return SimpleFlow(AUTH_PATH, core.auth_payload(s), s.retry, core.parse_token, False)

    def _cashout_flow(self, username: str, trans_id: str | None) -> CashoutFlow:
        tid = core.new_trans_id() if trans_id is None else trans_id
        return CashoutFlow(username, tid, self._settings.retry)

    def _query_flow(self, username: str, trans_id: str) -> SimpleFlow[Transaction]:
        payload = core.member_payload(username, trans_id)
        return SimpleFlow(QUERY_PATH, payload, self._settings.retry, core.parse_transaction, True)


class Client(_Base):
    """Synchronous client. Thread-safe: share one across threads (one token for all).

    ``timeout``: seconds or an ``httpx.Timeout`` for each request (default 10 s, or the given
    ``http_client``'s own); ``None``: no timeout, as in httpx.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        agent_id: str | None = None,
        api_key: str | None = None,
        secret: str | None = None,
        scheme: Scheme = "transfer",
        timeout: float | httpx.Timeout | None = _UNSET,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
    ) -> None:
        self._configure(
            base_url, agent_id, api_key, secret, scheme, timeout,
            max_retries, backoff_base, backoff_max, http_client is None,
        )  # fmt: skip
        self._http = http_client if http_client is not None else httpx.Client()
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
        if self._owns_http:
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
            return self._tokens.store(self._drive(self._token_flow()))

    def _send(self, send: Send, token: str | None) -> Outcome:
        prepared = core.prepare(self._settings, send.path, send.payload, token)
        started = time.perf_counter()
        try:
            response = self._http.post(
                prepared.url, content=prepared.body, headers=prepared.headers,
                timeout=core.request_timeout(self._settings),
            )  # fmt: skip
        except httpx.HTTPError as exc:
            outcome: Outcome = core.classify_exception(exc)
        else:
            outcome = core.classify_response(response.status_code, response.content)
        core.log_attempt(send, outcome, time.perf_counter() - started)
        return outcome

    def _drive(self, flow: Flow[T]) -> T:
        step = flow.start()
        generation: int | None = None
        while True:
            if isinstance(step, Done):
                return step.value
            if isinstance(step, Raise):
                raise step.error from step.cause
            core.log_retry(step)
            if step.delay > 0:
                time.sleep(step.delay)
            token = None
            if step.authenticated:
                try:
                    token, generation = self._token(generation if step.renew_token else None)
                except VPSealError as exc:
                    step = flow.on_auth_failure(exc)
                    continue
            step = flow.on_outcome(self._send(step, token))


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
        timeout: float | httpx.Timeout | None = _UNSET,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
    ) -> None:
        self._configure(
            base_url, agent_id, api_key, secret, scheme, timeout,
            max_retries, backoff_base, backoff_max, http_client is None,
        )  # fmt: skip
        self._http = http_client if http_client is not None else httpx.AsyncClient()
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
        if self._owns_http:
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
            return self._tokens.store(await self._drive(self._token_flow()))

    async def _send(self, send: Send, token: str | None) -> Outcome:
        prepared = core.prepare(self._settings, send.path, send.payload, token)
        started = time.perf_counter()
        try:
            response = await self._http.post(
                prepared.url, content=prepared.body, headers=prepared.headers,
                timeout=core.request_timeout(self._settings),
            )  # fmt: skip
        except httpx.HTTPError as exc:
            outcome: Outcome = core.classify_exception(exc)
        else:
            outcome = core.classify_response(response.status_code, response.content)
        core.log_attempt(send, outcome, time.perf_counter() - started)
        return outcome

    async def _drive(self, flow: Flow[T]) -> T:
        step = flow.start()
        generation: int | None = None
        while True:
            if isinstance(step, Done):
                return step.value
            if isinstance(step, Raise):
                raise step.error from step.cause
            core.log_retry(step)
            if step.delay > 0:
                await asyncio.sleep(step.delay)
            token = None
            if step.authenticated:
                try:
                    token, generation = await self._token(generation if step.renew_token else None)
                except VPSealError as exc:
                    step = flow.on_auth_failure(exc)
                    continue
            step = flow.on_outcome(await self._send(step, token))


__all__ = ["AsyncClient", "CashoutResult", "Client", "Transaction"]
