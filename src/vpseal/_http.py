"""The seam between the client and an HTTP library.

An HTTP option is a thin shell: it posts one prepared request and turns what happened into an
``Outcome`` (an answer, or no answer with whether the request may have been applied). It knows
nothing of tokens, retries or cash-outs; those live once in ``_client_core``, so every option
behaves the same. Each option's library is imported only when that option is chosen.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

from vpseal._client_core import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, Outcome, Prepared
from vpseal.errors import ConfigError

if TYPE_CHECKING:
    import httpx

# The documented HTTP options: httpx (a run-time dependency) and pyreqwest (the
# ``vpseal[pyreqwest]`` extra: Rust's reqwest, measured 3-10x less client CPU per request).
HTTP_OPTIONS = ("httpx", "pyreqwest")
DEFAULT_HTTP = "httpx"
DEFAULT_MAX_CONNECTIONS = 100

class _DefaultTimeout:
    """``timeout`` left out: DEFAULT_TIMEOUT, or the given http_client's own."""

    def __repr__(self) -> str:
        return "<default timeout>"


USE_DEFAULT_TIMEOUT: Any = _DefaultTimeout()

Verify = bool | str | ssl.SSLContext


class HTTPConfig(NamedTuple):
    """What every option is built from. ``verify``: True (system CAs), False (no check), a CA
    bundle path, or an ``ssl.SSLContext`` (httpx only). ``max_response_bytes``: a longer
    answer is not read (ResponseFormatError)."""

    timeout: float | httpx.Timeout | None
    max_connections: int
    verify: Verify
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def seconds(self) -> float | None:
        """The timeout as seconds (None: none), for options that take plain seconds."""
        from vpseal._client_core import resolve_timeout

        if self.timeout is USE_DEFAULT_TIMEOUT:
            return DEFAULT_TIMEOUT
        return resolve_timeout(self.timeout)


class SyncHTTP(Protocol):
    """``post``: send one request and classify what happened. ``bound``: seconds this attempt
    may take in all (the call's deadline is near), else None for the configured timeout."""

    def post(self, prepared: Prepared, bound: float | None) -> Outcome: ...

    def close(self) -> None: ...


class AsyncHTTP(Protocol):
    """As SyncHTTP. ``loop_bound``: its connections belong to the event loop that made them."""

    loop_bound: bool

    async def post(self, prepared: Prepared, bound: float | None) -> Outcome: ...

    async def aclose(self) -> None: ...


T = TypeVar("T")


async def within(seconds: float, awaitable: Awaitable[T]) -> T:
    """Await with a hard time limit (TimeoutError): asyncio.timeout where it exists (3.11+,
    no extra task), wait_for on 3.10."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    try:  # pragma: no cover - 3.10
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:  # not the builtin TimeoutError before 3.11
        raise TimeoutError from None


def check_config(http: str, max_connections: int, verify: object, max_bytes: object = 1) -> None:
    if http not in HTTP_OPTIONS:
        raise ConfigError(f"http must be one of {', '.join(HTTP_OPTIONS)}, not {http!r}")
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise ConfigError("max_connections must be an int")
    if not 1 <= max_connections <= 10_000:
        raise ConfigError("max_connections must be between 1 and 10000")
    if not isinstance(verify, (bool, str, ssl.SSLContext)):
        raise ConfigError("verify must be a bool, a CA bundle path or an ssl.SSLContext")
    if type(max_bytes) is not int or not 1024 <= max_bytes <= 1 << 30:
        raise ConfigError("max_response_bytes must be an int between 1024 and 2**30")


def sync_http(http: str, config: HTTPConfig, http_client: Any) -> SyncHTTP:
    """The chosen option's sync shell (``http_client``: the user's own httpx.Client)."""
    check_config(http, config.max_connections, config.verify, config.max_response_bytes)
    if http == "pyreqwest":
        _no_http_client(http, http_client)
        from vpseal._http_pyreqwest import PyreqwestSync

        return PyreqwestSync(config)
    from vpseal._http_httpx import HttpxSync

    return HttpxSync(config, http_client)


def async_http(http: str, config: HTTPConfig, http_client: Any) -> AsyncHTTP:
    """The chosen option's async shell (``http_client``: the user's own httpx.AsyncClient)."""
    check_config(http, config.max_connections, config.verify, config.max_response_bytes)
    if http == "pyreqwest":
        _no_http_client(http, http_client)
        from vpseal._http_pyreqwest import PyreqwestAsync

        return PyreqwestAsync(config)
    from vpseal._http_httpx import HttpxAsync

    return HttpxAsync(config, http_client)


def _no_http_client(http: str, http_client: Any) -> None:
    if http_client is not None:
        raise ConfigError(f"http_client is an httpx client; it cannot be used with http={http!r}")
