"""The pyreqwest option for gateways (``pip install 'vpseal[pyreqwest]'``): Rust's reqwest and
hyper under a Python API, chosen because it measured closest to a hand-written asyncio client
(bench/test_gateway.py). Like the httpx shell it only moves bytes and maps exceptions.

pyreqwest sets no timeouts by default and follows redirects; this shell always sets every
timeout it has and never follows a redirect, as httpx does.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

from vpseal._client_core import (
    Outcome,
    Prepared,
    classify_response,
    maybe_sent,
    not_sent,
    too_large,
)
from vpseal._http import HTTPConfig
from vpseal.api_errors import TransportError
from vpseal.errors import ConfigError

EXTRA = "pip install 'vpseal[pyreqwest]'"

try:
    from pyreqwest import exceptions as _exc
    from pyreqwest.client import ClientBuilder, SyncClientBuilder
except ImportError as _import_error:  # pragma: no cover - depends on the environment
    _MISSING: str | None = (
        f"pyreqwest has no release for Python {sys.version_info[0]}.{sys.version_info[1]} "
        "(it needs 3.11 or later)"
        if sys.version_info < (3, 11)
        else f"pyreqwest is not installed ({_import_error})"
    )
else:
    _MISSING = None
    _CONNECT: tuple[type[Exception], ...] = (_exc.ConnectError, _exc.ConnectTimeoutError)
    # Failures that say nothing about our request: building it, or a closed client.
    _FATAL: tuple[type[Exception], ...] = (_exc.BuilderError, _exc.ClientClosedError)


def _require() -> None:
    if _MISSING is not None:
        raise ConfigError(f"http='pyreqwest' needs the extra: {EXTRA}; {_MISSING}")


def _causes(exc: Exception) -> list[str]:
    details = getattr(exc, "details", None)
    causes = details.get("causes") if isinstance(details, dict) else None
    return [str(c.get("message", "")) for c in causes or () if isinstance(c, dict)]


def classify_exception(exc: Exception) -> Outcome:
    """A pyreqwest failure as an outcome, as the httpx shell does it.

    pyreqwest's class names are not evidence (measured with 0.15: a read timeout raises
    ConnectTimeoutError, and a kept-alive connection closed after the request was written
    raises ConnectError, "client error (SendRequest)"). So a failure counts as never sent only
    when its causes say the connect itself failed ("client error (Connect)"); anything else may
    have been applied, which costs at most a transaction query. A BuilderError may quote a
    header value (the bearer token), so only its type is kept."""
    causes = _causes(exc)
    if isinstance(exc, _exc.BuilderError):
        return not_sent(TransportError(type(exc).__name__), retryable=False)
    message = getattr(exc, "message", "") or str(exc)
    text = f"{type(exc).__name__}: {message}" + (f" ({causes[-1]})" if causes else "")
    error = TransportError(text)
    if isinstance(exc, _CONNECT) and "client error (Connect)" in causes:
        return not_sent(error)
    if isinstance(exc, (*_FATAL, _exc.RequestPanicError)):
        return maybe_sent(error, retryable=False)
    return maybe_sent(error)


def _build(builder: Any) -> Any:
    """pyreqwest refuses to start in a child forked after it ran (its Tokio runtime cannot
    be reused): say so as a ConfigError, with pyreqwest's own explanation."""
    try:
        return builder.build()
    except RuntimeError as exc:
        raise ConfigError(f"http='pyreqwest' cannot start a client here: {exc}") from None


def _configure(builder: Any, config: HTTPConfig) -> Any:
    """Pool, timeouts, redirects and certificates, the same for the sync and async client."""
    n = config.max_connections
    builder = (
        builder.max_connections(n)
        .pool_max_idle_per_host(n)
        .follow_redirects(False)
        .error_for_status(False)
        .gzip(False)
    )
    seconds = config.seconds()
    if seconds is not None:
        span = timedelta(seconds=seconds)
        builder = builder.timeout(span).connect_timeout(span).pool_timeout(span).read_timeout(span)
    verify = config.verify
    if verify is False:
        builder = builder.danger_accept_invalid_certs(True)
    elif isinstance(verify, str):
        try:
            with open(verify, "rb") as f:
                builder = builder.add_root_certificate_pem(f.read())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"verify: cannot load the CA bundle ({type(exc).__name__})") from None
    elif verify is not True:
        raise ConfigError("http='pyreqwest' takes verify=True, False or a CA bundle path")
    return builder


def _request(client: Any, prepared: Prepared, bound: float | None, total: float | None) -> Any:
    """The request; a per-request timeout replaces the client's whole-request one, so it is
    set only when the call's deadline (``bound``) is nearer than the configured timeout."""
    builder = client.post(prepared.url).headers(prepared.headers).body_bytes(prepared.body)
    if bound is not None and (total is None or bound < total):
        builder = builder.timeout(timedelta(seconds=max(bound, 0.001)))
    return builder.build_streamed()  # streamed: the size limit applies before reading


def _classify(response: Any, content: bytes) -> Outcome:
    return classify_response(response.status, content, response.get_header)


def _oversized(response: Any, limit: int) -> bool:
    length = response.get_header("content-length")
    return length is not None and length.isdigit() and int(length) > limit


class PyreqwestSync:
    def __init__(self, config: HTTPConfig) -> None:
        _require()
        self._http = _build(_configure(SyncClientBuilder(), config))
        self._limit = config.max_response_bytes
        self._total = config.seconds()

    def post(self, prepared: Prepared, bound: float | None) -> Outcome:
        limit = self._limit
        try:
            with _request(self._http, prepared, bound, self._total) as response:
                if _oversized(response, limit):
                    return too_large(response.status, limit)
                reader = response.body_reader
                chunks: list[bytes] = []
                size = 0
                while (chunk := reader.read_chunk()) is not None:
                    size += len(chunk)
                    if size > limit:
                        return too_large(response.status, limit)
                    chunks.append(bytes(chunk))
        except _exc.PyreqwestError as exc:
            return classify_exception(exc)
        return _classify(response, b"".join(chunks))

    def close(self) -> None:
        self._http.close()


class PyreqwestAsync:
    loop_bound = False  # reqwest runs on its own runtime: any event loop may await it

    def __init__(self, config: HTTPConfig) -> None:
        _require()
        self._http = _build(_configure(ClientBuilder(), config))
        self._limit = config.max_response_bytes
        self._total = config.seconds()

    async def post(self, prepared: Prepared, bound: float | None) -> Outcome:
        limit = self._limit
        try:
            async with _request(self._http, prepared, bound, self._total) as response:
                if _oversized(response, limit):
                    return too_large(response.status, limit)
                reader = response.body_reader
                chunks: list[bytes] = []
                size = 0
                while (chunk := await reader.read_chunk()) is not None:
                    size += len(chunk)
                    if size > limit:
                        return too_large(response.status, limit)
                    chunks.append(bytes(chunk))
        except _exc.PyreqwestError as exc:
            return classify_exception(exc)
        return _classify(response, b"".join(chunks))

    async def aclose(self) -> None:
        await self._http.close()
