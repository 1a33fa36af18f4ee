"""The httpx option (the default): moves bytes, maps httpx's exceptions, nothing else.

What keeps it lean: one pool sized by ``max_connections`` with as many kept-alive connections
(no reconnect churn under concurrency), and ``sniffio`` installed (a declared dependency),
without which httpcore retries a failing import on every async request.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

import httpx

from vpseal._client_core import (
    Outcome,
    Prepared,
    classify_response,
    maybe_sent,
    not_sent,
    too_large,
)
from vpseal._http import USE_DEFAULT_TIMEOUT, HTTPConfig, within
from vpseal.api_errors import TransportError
from vpseal.errors import ConfigError

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
_FATAL = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def classify_exception(exc: httpx.HTTPError) -> Outcome:
    """An httpx failure as an outcome: connect-phase failures never reached the server; a
    timeout or drop after sending may have been applied. A LocalProtocolError's text may quote
    one of our own header values (the bearer token), so only its type is kept."""
    text = "" if isinstance(exc, httpx.LocalProtocolError) else str(exc)
    error = TransportError(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    if isinstance(exc, _NOT_SENT):
        return not_sent(error)
    if isinstance(exc, _FATAL):
        return not_sent(error, retryable=False)
    return maybe_sent(error)


def _timeout(config: HTTPConfig, own: bool) -> Any:
    """What each request passes as ``timeout``; a given client keeps its own by default."""
    value = config.timeout
    if isinstance(value, httpx.Timeout):
        return value
    if value is USE_DEFAULT_TIMEOUT and not own:
        return httpx.USE_CLIENT_DEFAULT
    return httpx.Timeout(config.seconds())


def _verify(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    if isinstance(verify, str):  # httpx 0.28 deprecates a path here
        try:
            return ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"verify: cannot load the CA bundle ({type(exc).__name__})") from None
    return verify


def _limits(config: HTTPConfig) -> httpx.Limits:
    n = config.max_connections
    return httpx.Limits(max_connections=n, max_keepalive_connections=n)


def _head_problem(response: httpx.Response, limit: int) -> Outcome | None:
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        return too_large(response.status_code, limit)
    return None


def _slow(status: int) -> Outcome:
    """The body trickled in past the attempt's time limit (each read was within its timeout)."""
    return maybe_sent(
        TransportError(f"HTTP {status}: the answer arrived too slowly", http_status=status)
    )


def _classify(response: httpx.Response, content: bytes) -> Outcome:
    return classify_response(response.status_code, content, response.headers.get)


class _Shell:
    """What both httpx shells share: timeouts, the size limit, the per-attempt bound."""

    _http: Any  # httpx.Client or httpx.AsyncClient

    def _setup(self, config: HTTPConfig, own: bool) -> None:
        self._timeout = _timeout(config, own)
        self._limit = config.max_response_bytes
        # The whole attempt's bound: httpx's timeouts are per read, so a server trickling
        # a byte at a time would otherwise keep an attempt alive for ever.
        self._total = None if isinstance(config.timeout, httpx.Timeout) else config.seconds()
        self._own = own

    def _plan(self, bound: float | None) -> tuple[Any, float | None]:
        """(httpx timeout, whole-attempt bound) for one attempt: the configured ones, each
        part cut to ``bound`` when the call's deadline is nearer."""
        total = self._total
        if bound is None or (total is not None and bound >= total):
            return self._timeout, total
        configured = self._timeout
        if configured is httpx.USE_CLIENT_DEFAULT:
            configured = self._http.timeout
        parts = (configured.connect, configured.read, configured.write, configured.pool)
        cut = [bound if part is None else min(part, bound) for part in parts]
        return httpx.Timeout(connect=cut[0], read=cut[1], write=cut[2], pool=cut[3]), bound


class HttpxSync(_Shell):
    def __init__(self, config: HTTPConfig, http_client: httpx.Client | None) -> None:
        own = http_client is None
        if http_client is None:
            http_client = httpx.Client(limits=_limits(config), verify=_verify(config.verify))
        elif not isinstance(http_client, httpx.Client):
            raise ConfigError("http_client must be an httpx.Client")
        self._setup(config, own)
        self._http = http_client

    def post(self, prepared: Prepared, bound: float | None) -> Outcome:
        timeout, total = self._plan(bound)
        ends = None if total is None else time.monotonic() + total
        limit = self._limit
        try:
            with self._http.stream(
                "POST", prepared.url, content=prepared.body, headers=prepared.headers,
                timeout=timeout,
            ) as response:  # fmt: skip
                problem = _head_problem(response, limit)
                if problem is not None:
                    return problem
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        return too_large(response.status_code, limit)
                    if ends is not None and time.monotonic() > ends:
                        return _slow(response.status_code)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            return classify_exception(exc)
        return _classify(response, b"".join(chunks))

    def close(self) -> None:
        if self._own:
            self._http.close()


class HttpxAsync(_Shell):
    loop_bound = True  # httpx's async connections belong to the loop that opened them

    def __init__(self, config: HTTPConfig, http_client: httpx.AsyncClient | None) -> None:
        own = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(limits=_limits(config), verify=_verify(config.verify))
        elif not isinstance(http_client, httpx.AsyncClient):
            raise ConfigError("http_client must be an httpx.AsyncClient")
        self._setup(config, own)
        self._http = http_client

    async def post(self, prepared: Prepared, bound: float | None) -> Outcome:
        timeout, total = self._plan(bound)
        if total is None:
            return await self._post(prepared, timeout)
        try:
            return await within(total, self._post(prepared, timeout))
        except TimeoutError:
            return _slow(0)

    async def _post(self, prepared: Prepared, timeout: Any) -> Outcome:
        limit = self._limit
        try:
            async with self._http.stream(
                "POST", prepared.url, content=prepared.body, headers=prepared.headers,
                timeout=timeout,
            ) as response:  # fmt: skip
                problem = _head_problem(response, limit)
                if problem is not None:
                    return problem
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        return too_large(response.status_code, limit)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            return classify_exception(exc)
        return _classify(response, b"".join(chunks))

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()
