"""The httpx option (the default): moves bytes, maps httpx's exceptions, nothing else.

What keeps it lean: one pool sized by ``max_connections`` with as many kept-alive connections
(no reconnect churn under concurrency), and ``sniffio`` installed (a declared dependency),
without which httpcore retries a failing import on every async request.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from vpseal._client_core import Outcome, Prepared, classify_response, maybe_sent, not_sent
from vpseal._http import USE_DEFAULT_TIMEOUT, HTTPConfig
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


class HttpxSync:
    def __init__(self, config: HTTPConfig, http_client: httpx.Client | None) -> None:
        own = http_client is None
        self._timeout = _timeout(config, own)
        if http_client is None:
            http_client = httpx.Client(limits=_limits(config), verify=_verify(config.verify))
        elif not isinstance(http_client, httpx.Client):
            raise ConfigError("http_client must be an httpx.Client")
        self._http = http_client
        self._own = own

    def post(self, prepared: Prepared) -> Outcome:
        try:
            response = self._http.post(
                prepared.url, content=prepared.body, headers=prepared.headers,
                timeout=self._timeout,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            return classify_exception(exc)
        return classify_response(response.status_code, response.content)

    def close(self) -> None:
        if self._own:
            self._http.close()


class HttpxAsync:
    def __init__(self, config: HTTPConfig, http_client: httpx.AsyncClient | None) -> None:
        own = http_client is None
        self._timeout = _timeout(config, own)
        if http_client is None:
            http_client = httpx.AsyncClient(limits=_limits(config), verify=_verify(config.verify))
        elif not isinstance(http_client, httpx.AsyncClient):
            raise ConfigError("http_client must be an httpx.AsyncClient")
        self._http = http_client
        self._own = own

    async def post(self, prepared: Prepared) -> Outcome:
        try:
            response = await self._http.post(
                prepared.url, content=prepared.body, headers=prepared.headers,
                timeout=self._timeout,
            )  # fmt: skip
        except httpx.HTTPError as exc:
            return classify_exception(exc)
        return classify_response(response.status_code, response.content)

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()
