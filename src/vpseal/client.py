"""Clients for the VP wallet API: token, cash-out and transaction query.

``Client`` and ``AsyncClient`` only drive: each asks a flow from ``_client_core`` what to do
next, has its HTTP option (``_http``: httpx by default, pyreqwest for gateways) send it, and
reports the outcome back, so retries, settling and parsing are written once for every option.
Every attempt is sealed afresh (timestamp, nonce, IV, signature) while the transId stays the
same; that is why retries live above the HTTP library rather than in it.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from vpseal import _client_core as core
from vpseal._client_core import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_BUDGET,
    DEFAULT_TIMEOUT,
    UNLIMITED_RETRIES,
    CashoutFlow,
    CashoutResult,
    Done,
    Flow,
    Raise,
    RetryBudget,
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
    within,
)
from vpseal._protocol import QUERY_PATH
from vpseal.api_errors import (
    Attempt,
    CallContext,
    DeadlineExceeded,
    OutcomeUnknown,
    TransportError,
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

_B = TypeVar("_B", bound="_Base")
_OPTIONS = ("timeout", "deadline", "max_retries", "backoff_base", "backoff_max")


class _Base:
    """Configuration and state both clients share. ``with_options`` copies share everything
    but the per-call settings (retry policy, deadline, attempt timeout)."""

    _settings: Settings
    _tokens: TokenCache
    _store: TokenStore
    _store_key: str
    _http_config: HTTPConfig
    _budget: RetryBudget
    _deadline: float | None
    _attempt_timeout: float | None  # a with_options timeout; else the HTTP option's own

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
        deadline: float | None,
        retry_budget: int | None,
        max_response_bytes: int,
    ) -> None:
        policy = RetryPolicy(max_retries, backoff_base, backoff_max)
        self._settings = core.resolve_settings(
            base_url, agent_id, api_key, secret, scheme, policy
        )
        self._http_config = HTTPConfig(timeout, max_connections, verify, max_response_bytes)
        self._tokens = TokenCache()
        self._store = MemoryTokenStore() if token_store is None else token_store
        self._pid = os.getpid()
        self._store_key = store_key(self._settings.base_url, self.agent_id)
        self._deadline = _deadline(deadline)
        self._attempt_timeout = None
        self._budget = UNLIMITED_RETRIES if retry_budget is None else RetryBudget(retry_budget)

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

    def with_options(self: _B, **options: Any) -> _B:
        """A view of this client with other per-call settings (``timeout`` in seconds,
        ``deadline``, ``max_retries``, ``backoff_base``, ``backoff_max``), sharing its
        connections and token: ``client.with_options(deadline=5).cashout(...)``."""
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise ConfigError(f"with_options takes {', '.join(_OPTIONS)}; not {sorted(unknown)}")
        view = copy.copy(self)
        retry = self._settings.retry
        view._settings = replace(
            self._settings,
            retry=RetryPolicy(
                options.get("max_retries", retry.max_retries),
                options.get("backoff_base", retry.backoff_base),
                options.get("backoff_max", retry.backoff_max),
                retry.retry_after_max,
            ),
        )
        if "deadline" in options:
            view._deadline = _deadline(options["deadline"])
        if "timeout" in options:
            view._attempt_timeout = core.resolve_timeout(options["timeout"])
        return view

    def _check_process(self) -> None:
        """A client's connections (and pyreqwest's runtime threads) belong to the process that
        made it: used in a forked child, it would share sockets with its parent or hang."""
        if os.getpid() != self._pid:
            raise ConfigError(
                f"this {type(self).__name__} was created in process {self._pid}; create one "
                "client per process, after fork (share the token with a RedisTokenStore)"
            )

    def _ends(self) -> float | None:
        return None if self._deadline is None else time.monotonic() + self._deadline

    def _bound(self, ends: float | None) -> float | None:
        """What one attempt may take: the time left before the deadline, at most the
        per-call timeout; None: the HTTP option's configured timeout."""
        if ends is None:
            return self._attempt_timeout
        left = ends - time.monotonic()
        return left if self._attempt_timeout is None else min(left, self._attempt_timeout)

    def _token_flow(self, refused: str | None) -> TokenFlow:
        """Fetching a token takes at most every attempt's timeout plus the backoff between
        them; the store's lock lasts that long, and waiting for another holder twice that."""
        policy = self._settings.retry
        per_try = self._attempt_timeout or _seconds(self._http_config.timeout)
        lock_ttl = (policy.max_retries + 1) * per_try + policy.max_retries * policy.backoff_max + 1
        if self._deadline is not None:
            lock_ttl = min(lock_ttl, self._deadline + 1)
        return TokenFlow(
            self._settings, self._store, self._store_key, refused, lock_ttl, 2 * lock_ttl
        )

    def _cashout_flow(self, username: str, trans_id: str | None) -> CashoutFlow:
        tid = core.new_trans_id() if trans_id is None else trans_id
        return CashoutFlow(username, tid, self._settings.retry, self._budget)

    def _query_flow(self, username: str, trans_id: str) -> SimpleFlow[Transaction]:
        payload = core.member_payload(username, trans_id)
        return SimpleFlow(
            QUERY_PATH, payload, self._settings.retry, core.parse_transaction, True, self._budget
        )


def _deadline(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 86400:
        return float(value)
    raise ConfigError("deadline must be seconds between 0 and 86400, or None for none")


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


def _unexpected(exc: Exception) -> core.NoAnswer:
    """An exception the HTTP option did not map, raised while a request may have left: the
    request may have been applied (a cash-out is then settled, never guessed)."""
    error = TransportError(f"unexpected {type(exc).__name__} while sending (see __cause__)")
    error.__cause__ = exc
    return core.maybe_sent(error, retryable=False)


Record = tuple[Send, core.Outcome, float]  # one request; an Attempt only if an error needs it


def _attempt(record: Record) -> Attempt:
    step, outcome, elapsed = record
    if isinstance(outcome, core.Answer):
        env = outcome.envelope
        return Attempt(step.path, env.http_status, env.code, env.log_uuid, elapsed)
    status = getattr(outcome.error, "http_status", None)
    return Attempt(step.path, status, None, None, elapsed, str(outcome.error))


def _annotate(error: BaseException, trans_id: str | None, records: list[Record]) -> None:
    """Add the call's context to an error it raises (once: a shared token error keeps the
    context of the call that fetched)."""
    if not isinstance(error, CallContext):
        return
    if not error.attempts:
        error.attempts = tuple(_attempt(record) for record in records)
        if error.http_status is None and error.attempts:
            error.http_status = error.attempts[-1].status
    if trans_id is not None and error.trans_id is None:  # e.g. the token fetch of a query
        error.trans_id = trans_id


class _SyncFlight:
    """One piece of work (a token fetch, a cash-out) that concurrent callers wait for; its
    failure is theirs too. A lock held while it runs is all it costs when nobody waits."""

    __slots__ = ("_running", "error", "result")

    def __init__(self) -> None:
        self._running = threading.Lock()
        self._running.acquire()
        self.result: Any = None
        self.error: BaseException | None = None

    def land(self) -> None:
        """The work is over (result or error set): release the waiters."""
        self._running.release()

    def wait(self, timeout: float | None, late: Callable[[], BaseException]) -> Any:
        if not self._running.acquire(timeout=-1 if timeout is None else timeout):
            raise late()
        self._running.release()
        if self.error is not None:
            raise self.error
        return self.result


class _AsyncTwin:
    """A cash-out running in one coroutine; a future for the others is made only if one comes."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[CashoutResult] | None = None

    def joined(self) -> asyncio.Future[CashoutResult]:
        if self.future is None:
            self.future = asyncio.get_running_loop().create_future()
            self.future.add_done_callback(_retrieve)
        return self.future

    def land(self, result: CashoutResult | None, error: BaseException | None) -> None:
        future = self.future
        if future is None or future.done():
            return
        if error is None:
            future.set_result(result)  # type: ignore[arg-type]
        else:
            future.set_exception(error)


def _token_late() -> BaseException:
    return DeadlineExceeded("the call's deadline passed while waiting for a token")


def _twin_key(username: object, trans_id: object) -> tuple[str, str] | None:
    """Concurrent cash-outs of one member under one transId share one flight (None: the
    arguments are not plain strings, and the flow will say what is wrong with them)."""
    if type(username) is str and type(trans_id) is str:
        return username, trans_id
    return None


def _twin_late(
    trans_id: str, why: str = "the call's deadline passed while the same cash-out was in flight"
) -> Callable[[], BaseException]:
    def late() -> BaseException:
        return OutcomeUnknown(trans_id, why)

    return late


_CLIENT_DOC = """

    ``http``: "httpx" (default) or "pyreqwest" (``pip install 'vpseal[pyreqwest]'``, Python
    3.11+: a fraction of httpx's CPU per request, for gateways); both behave the same.
    ``timeout``: seconds for each request (default 10 s, or the given ``http_client``'s own;
    with httpx also an ``httpx.Timeout``); ``None``: no timeout. ``deadline``: seconds for a
    whole call, retries and settling included (default 60; a cash-out that may have been
    applied then ends in OutcomeUnknown). ``max_retries``, ``backoff_base``, ``backoff_max``:
    retry n waits 50-100 % of min(backoff_max, backoff_base * 2**(n-1)) s, or the server's
    Retry-After if longer (up to 30 s). ``retry_budget``: retries all calls of this client may
    make while the API keeps failing (5 per retry, 1 back per call that needs none; None: no
    limit). ``max_connections``: the pool size, all kept alive (size it to your concurrency).
    ``verify``: True, False, a CA bundle path, or an ``ssl.SSLContext`` (httpx).
    ``token_store``: share the token with other clients or processes
    (``vpseal.RedisTokenStore``); by default each client has its own. ``max_response_bytes``:
    a longer answer is refused unread.
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
        deadline: float | None = DEFAULT_DEADLINE,
        retry_budget: int | None = DEFAULT_RETRY_BUDGET,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._configure(
            base_url, agent_id, api_key, secret, scheme, timeout, max_retries,
            backoff_base, backoff_max, max_connections, verify, token_store,
            deadline, retry_budget, max_response_bytes,
        )  # fmt: skip
        self._http: SyncHTTP = sync_http(_option(http, http_client), self._http_config, http_client)
        self._token_mutex = threading.Lock()
        # token fetch and cash-outs in flight, shared with with_options views
        self._flights: dict[object, _SyncFlight] = {}

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
        (with the trans_id) when retries cannot tell whether it happened. Concurrent calls
        with the same username and trans_id share one cash-out and its outcome."""
        key = _twin_key(username, trans_id)
        if key is None:
            return self._drive(self._cashout_flow(username, trans_id))
        mine = _SyncFlight()
        flight = self._flights.setdefault(key, mine)  # atomic: one leader per key
        if flight is not mine:
            self._check_process()
            ends = self._ends()
            timeout = None if ends is None else max(0.0, ends - time.monotonic())
            result: CashoutResult = flight.wait(timeout, _twin_late(key[1]))
            return result
        try:
            done = self._drive(self._cashout_flow(username, trans_id))
            mine.result = done
            return done
        except BaseException as exc:
            mine.error = exc
            raise
        finally:
            del self._flights[key]
            mine.land()

    def check_transaction(self, username: str, trans_id: str) -> Transaction:
        """Query one transaction (TransactionNotFound, code 4, if it never happened)."""
        return self._drive(self._query_flow(username, trans_id))

    def authenticate(self) -> None:
        """Fetch a token now (otherwise the first call does); raises on bad credentials."""
        self._check_process()
        self._token(None, self._ends())

    # -- I/O

    def _token(self, stale: int | None, ends: float | None) -> tuple[str, int]:
        """The cached token, or one fetch that every concurrent caller waits for (bounded by
        each caller's deadline); a failed fetch fails all of them."""
        got = self._tokens.get(stale)
        if got is not None:
            return got
        with self._token_mutex:
            got = self._tokens.get(stale)
            if got is not None:
                return got
            flight = self._flights.get("token")
            leader = flight is None
            if flight is None:
                flight = self._flights["token"] = _SyncFlight()
        if not leader:
            timeout = None if ends is None else max(0.0, ends - time.monotonic())
            token: tuple[str, int] = flight.wait(timeout, _token_late)
            return token
        try:
            fetched: Token = self._drive(self._token_flow(self._tokens.refused(stale)))
            flight.result = stored = self._tokens.store(fetched)
            return stored
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._token_mutex:
                del self._flights["token"]
            flight.land()

    def _drive(self, flow: Flow[T]) -> T:
        self._check_process()
        ends = self._ends()
        attempts: list[Record] = []
        try:
            return self._run(flow, ends, attempts)
        except VPSealError as exc:
            _annotate(exc, flow.trans_id, attempts)
            raise

    def _run(self, flow: Flow[T], ends: float | None, attempts: list[Record]) -> T:
        step = flow.start()
        generation: int | None = None
        while True:
            if isinstance(step, Send):
                if step.reason:
                    core.log_retry(step, flow.trans_id)
                if ends is not None and time.monotonic() + step.delay >= ends:
                    step = flow.on_deadline()
                    continue
                if step.delay > 0:
                    time.sleep(step.delay)
                token = None
                if step.authenticated:
                    try:
                        token, generation = self._token(
                            generation if step.renew_token else None, ends
                        )
                    except VPSealError as exc:
                        step = flow.on_auth_failure(exc)
                        continue
                bound = self._bound(ends)
                if bound is not None and bound <= 0:
                    step = flow.on_deadline()
                    continue
                prepared = core.prepare(self._settings, step.path, step.payload, token)
                started = time.perf_counter()
                try:
                    outcome = self._http.post(prepared, bound)
                except Exception as exc:
                    outcome = _unexpected(exc)
                elapsed = time.perf_counter() - started
                attempts.append((step, outcome, elapsed))
                core.log_attempt(step, outcome, elapsed, flow.trans_id)
                step = flow.on_outcome(outcome)
            elif isinstance(step, Done):
                return step.value
            elif isinstance(step, Raise):
                raise step.error from step.cause
            elif ends is not None and time.monotonic() + step.delay >= ends:
                step = flow.on_deadline()
            else:
                time.sleep(step.delay)
                step = flow.on_wait()


Client.__doc__ = (Client.__doc__ or "") + _CLIENT_DOC


class AsyncClient(_Base):
    """Asynchronous client with the same arguments and methods as Client. It follows the
    event loop it is used from: its first use on a new loop (a second ``asyncio.run``)
    replaces the pool the old loop owned, before anything is sent."""

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
        deadline: float | None = DEFAULT_DEADLINE,
        retry_budget: int | None = DEFAULT_RETRY_BUDGET,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._configure(
            base_url, agent_id, api_key, secret, scheme, timeout, max_retries,
            backoff_base, backoff_max, max_connections, verify, token_store,
            deadline, retry_budget, max_response_bytes,
        )  # fmt: skip
        option = _option(http, http_client)
        # Shared with with_options views: the HTTP option, its loop, the token fetch.
        self._loop_state = _LoopState(
            async_http(option, self._http_config, http_client), option, http_client is None
        )

    @property
    def _http(self) -> AsyncHTTP:
        return self._loop_state.http

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
        await self._loop_state.http.aclose()

    async def cashout(self, username: str, trans_id: str | None = None) -> CashoutResult:
        """See Client.cashout. Concurrent calls with the same username and trans_id share the
        first one's cash-out; if that call is cancelled, the others raise OutcomeUnknown."""
        key = _twin_key(username, trans_id)
        if key is None:
            return await self._drive(self._cashout_flow(username, trans_id))
        self._follow_loop()
        twins = self._loop_state.cashouts
        mine = _AsyncTwin()
        twin = twins.setdefault(key, mine)
        if twin is not mine:
            self._check_process()
            future = twin.joined()
            ends = self._ends()
            if ends is None:
                return await asyncio.shield(future)
            try:
                return await within(max(0.0, ends - time.monotonic()), asyncio.shield(future))
            except TimeoutError:
                raise _twin_late(key[1])() from None
        try:
            done = await self._drive(self._cashout_flow(username, trans_id))
        except asyncio.CancelledError:
            mine.land(None, _twin_late(key[1], "the call that sent it was cancelled")())
            raise
        except BaseException as exc:
            mine.land(None, exc)
            raise
        else:
            mine.land(done, None)
            return done
        finally:
            if twins.get(key) is mine:
                del twins[key]

    async def check_transaction(self, username: str, trans_id: str) -> Transaction:
        """See Client.check_transaction."""
        return await self._drive(self._query_flow(username, trans_id))

    async def authenticate(self) -> None:
        """See Client.authenticate."""
        self._check_process()
        self._follow_loop()
        await self._token(None, self._ends())

    # -- I/O

    def _follow_loop(self) -> None:
        """Connections of a closed event loop cannot be used: on a new loop, an own pool is
        replaced (the old loop's sockets are dropped), a given http_client is refused."""
        state = self._loop_state
        loop = asyncio.get_running_loop()
        if state.loop is loop:
            return
        if state.loop is not None and state.http.loop_bound:
            if not state.own:
                raise ConfigError(
                    "the http_client given to this AsyncClient belongs to another event loop; "
                    "create the AsyncClient (and its http_client) inside the loop that uses it"
                )
            state.http = async_http(state.option, self._http_config, None)
        state.loop = loop
        state.flight = None
        state.cashouts = {}

    async def _token(self, stale: int | None, ends: float | None) -> tuple[str, int]:
        """As Client._token: one fetch (a task of its own, so that a cancelled caller does
        not cancel it for the others), awaited by every caller within its deadline."""
        got = self._tokens.get(stale)
        if got is not None:
            return got
        state = self._loop_state
        flight = state.flight
        if flight is None or flight.done():
            flight = state.flight = asyncio.ensure_future(self._fetch_token(stale))
            flight.add_done_callback(_retrieve)
        try:
            if ends is None:
                return await asyncio.shield(flight)
            return await within(max(0.0, ends - time.monotonic()), asyncio.shield(flight))
        except TimeoutError:
            raise DeadlineExceeded(
                "the call's deadline passed while waiting for a token"
            ) from None

    async def _fetch_token(self, stale: int | None) -> tuple[str, int]:
        token: Token = await self._drive(self._token_flow(self._tokens.refused(stale)))
        return self._tokens.store(token)

    async def _drive(self, flow: Flow[T]) -> T:
        self._check_process()
        self._follow_loop()
        ends = self._ends()
        attempts: list[Record] = []
        try:
            return await self._run(flow, ends, attempts)
        except VPSealError as exc:
            _annotate(exc, flow.trans_id, attempts)
            raise

    async def _run(self, flow: Flow[T], ends: float | None, attempts: list[Record]) -> T:
        step = flow.start()
        generation: int | None = None
        while True:
            if isinstance(step, Send):
                if step.reason:
                    core.log_retry(step, flow.trans_id)
                if ends is not None and time.monotonic() + step.delay >= ends:
                    step = flow.on_deadline()
                    continue
                if step.delay > 0:
                    await asyncio.sleep(step.delay)
                token = None
                if step.authenticated:
                    try:
                        token, generation = await self._token(
                            generation if step.renew_token else None, ends
                        )
                    except VPSealError as exc:
                        step = flow.on_auth_failure(exc)
                        continue
                bound = self._bound(ends)
                if bound is not None and bound <= 0:
                    step = flow.on_deadline()
                    continue
                prepared = core.prepare(self._settings, step.path, step.payload, token)
                started = time.perf_counter()
                try:
                    outcome = await self._loop_state.http.post(prepared, bound)
                except Exception as exc:
                    outcome = _unexpected(exc)
                elapsed = time.perf_counter() - started
                attempts.append((step, outcome, elapsed))
                core.log_attempt(step, outcome, elapsed, flow.trans_id)
                step = flow.on_outcome(outcome)
            elif isinstance(step, Done):
                return step.value
            elif isinstance(step, Raise):
                raise step.error from step.cause
            elif ends is not None and time.monotonic() + step.delay >= ends:
                step = flow.on_deadline()
            else:
                await asyncio.sleep(step.delay)
                step = flow.on_wait()


class _LoopState:
    """What an AsyncClient and its with_options views share: the HTTP option, the event
    loop it serves, and the token fetch in flight on that loop."""

    def __init__(self, http: AsyncHTTP, option: str, own: bool) -> None:
        self.http = http
        self.option = option
        self.own = own
        self.loop: asyncio.AbstractEventLoop | None = None
        self.flight: asyncio.Future[tuple[str, int]] | None = None
        self.cashouts: dict[tuple[str, str], _AsyncTwin] = {}


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a token fetch's failure as seen even if every waiter left (no asyncio warning)."""
    if not future.cancelled():
        future.exception()


AsyncClient.__doc__ = (AsyncClient.__doc__ or "") + _CLIENT_DOC

__all__ = ["AsyncClient", "CashoutResult", "Client", "Transaction"]
