"""Everything the sync and async clients share that does no I/O.

The clients are thin drivers: they ask a *flow* what to do next (send a request, wait, stop with
a result or an error), do it, and hand the outcome back. All decisions live here, once:
configuration, request building, envelope parsing into typed results, the retry/backoff
policy, the token cache, and the cash-out state machine that decides between retrying,
settling an uncertain attempt through the transaction query, and raising.

Cash-out safety rests on one rule: the transId is the idempotency key, so re-sending it is
always safe, and a result is only reported when an answer proves it (code 0 to the cash-out,
or the query showing this transId as a withdrawal of this member). Anything else after an
attempt that may have reached the server ends in OutcomeUnknown, never in a guess.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, Union
from urllib.parse import urlsplit

from vpseal._protocol import AUTH_PATH, CASHOUT_PATH, QUERY_PATH
from vpseal.amounts import parse_amount
from vpseal.api_errors import (
    APIError,
    DeadlineExceeded,
    OutcomeUnknown,
    RateLimited,
    ResponseFormatError,
    TransactionExists,
    TransportError,
    WalletLocked,
    from_response,
)
from vpseal.envelope import Credentials, seal_request
from vpseal.errors import ConfigError, VPSealError
from vpseal.signing import Scheme
from vpseal.tokens import StoredToken, TokenStore

logger = logging.getLogger("vpseal.client")


ENV_BASE_URL = "VPSEAL_BASE_URL"
ENV_AGENT_ID = "VPSEAL_AGENT_ID"
ENV_API_KEY = "VPSEAL_API_KEY"
ENV_SECRET = "VPSEAL_SECRET"

DEFAULT_TIMEOUT = 10.0  # seconds for one request
DEFAULT_DEADLINE = 60.0  # seconds for a whole call: every attempt, wait and settling query
# Backoff: retry n waits 50-100 % of min(max, base * 2**(n-1)): 0.5, 1, 2, 4, 8 s caps, so
# the five retries spread over 8-16 s and outlast a short outage (a deploy, a failover).
DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_MAX = 8.0
DEFAULT_RETRY_AFTER_MAX = 30.0  # a server's Retry-After is honoured up to this
DEFAULT_MAX_RESPONSE_BYTES = 1 << 20  # the API's answers are a few hundred bytes
DEFAULT_RETRY_BUDGET = 100  # RetryBudget capacity: 20 retries while nothing succeeds
USER_AGENT = "vpseal-python"
MAX_TOKEN_LIFETIME = 366 * 86400  # a longer expiresIn is a broken answer, not a token
CLOCK_SKEW_LIMIT = 300.0  # the API's replay window: +-5 minutes (SPEC.md)

CODE_OK = 0
CODE_NOT_FOUND = 4
CODE_INTERNAL = 7
CODE_MEMBER_NOT_FOUND = 8
CODE_LOCKED = 20
CODE_PENDING = 35
CODE_AUTH = 83
CODE_EXISTS = 3
# Answers that come from the ledger itself: with the query showing no transaction, they are
# the true outcome even after an uncertain attempt.
LEDGER_VERDICTS = frozenset({2, 8, 19})

T = TypeVar("T")


# ------------------------------------------------------------------------------ results


class CashoutResult(NamedTuple):
    """A cash-out that happened. ``balance`` is the balance after it (0 for All Cash Out).

    ``settled_by_query`` is True when the answer to the cash-out itself was lost and the
    transaction query proved that it happened; ``attempts`` counts cash-out requests sent.
    Immutable and slotted (a NamedTuple, like SealedRequest): a third of a frozen
    dataclass's cost on the per-request path.
    """

    trans_id: str
    amount: Decimal
    balance: Decimal
    log_uuid: str
    attempts: int = 1
    settled_by_query: bool = False


class Transaction(NamedTuple):
    """One transaction as the query reports it; ``amount`` < 0 is a withdrawal."""

    agent: str
    trans_id: str
    transaction_time: datetime
    amount: Decimal
    username: str
    log_uuid: str


class Token(NamedTuple):
    """An access token as /v2/auth returned it (never shown in repr)."""

    value: str
    expires_in: float

    def __repr__(self) -> str:
        return f"Token(value=<hidden>, expires_in={self.expires_in!r})"


# ------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: retry n waits between half and all of
    min(backoff_max, backoff_base * 2**(n-1)) seconds, so that clients that failed together
    do not come back together."""

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX
    retry_after_max: float = DEFAULT_RETRY_AFTER_MAX

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ConfigError("max_retries must be an int")
        if not 0 <= self.max_retries <= 100:
            raise ConfigError("max_retries must be between 0 and 100")
        for name in ("backoff_base", "backoff_max", "retry_after_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} must be a number of seconds")
            if not 0 <= value <= 3600:  # also refuses NaN
                raise ConfigError(f"{name} must be between 0 and 3600 seconds")

    def delay(
        self,
        retry: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """The wait before retry ``retry`` (1-based); a server's Retry-After is a minimum."""
        cap = min(self.backoff_max, self.backoff_base * float(2 ** min(max(0, retry - 1), 30)))
        wait = cap / 2 + rand() * cap / 2
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.retry_after_max))
        return wait


class RetryBudget:
    """Retries a client may still make, shared by all its calls (as the AWS SDKs do): each
    retry spends ``cost`` tokens, each call that succeeds at once earns one back, up to
    ``capacity``. When a whole API fails, a busy client stops multiplying its load after
    capacity/cost retries; settling an uncertain cash-out is never refused."""

    def __init__(self, capacity: int = 100, cost: int = 5) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ConfigError("retry_budget must be an int >= 0")
        self.capacity = capacity
        self.cost = cost
        self._tokens = capacity
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RetryBudget({self._tokens}/{self.capacity})"

    def spend(self) -> bool:
        with self._lock:
            if self._tokens < self.cost:
                return False
            self._tokens -= self.cost
            return True

    def earn(self) -> None:
        if self._tokens < self.capacity:  # racy read, exact update
            with self._lock:
                self._tokens = min(self.capacity, self._tokens + 1)


UNLIMITED_RETRIES = RetryBudget(capacity=0, cost=0)  # spend() always succeeds


@dataclass(frozen=True)
class Settings:
    """Resolved configuration; the secret and the key stay out of repr."""

    base_url: str
    credentials: Credentials
    secret: str = field(repr=False)
    retry: RetryPolicy


def _pick(value: str | None, env: str, environ: Mapping[str, str]) -> str:
    if value is None:
        value = environ.get(env)
    if value is None or not value.strip():
        raise ConfigError(f"{env} is not set (pass it as an argument or set the variable)")
    return value


def resolve_settings(
    base_url: str | None,
    agent_id: str | None,
    api_key: str | None,
    secret: str | None,
    scheme: Scheme,
    retry: RetryPolicy,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Arguments first, then VPSEAL_* variables; a missing one raises ConfigError naming it.
    The API KEY is parsed here, so a malformed one fails before any request."""
    env = os.environ if environ is None else environ
    url = _pick(base_url, ENV_BASE_URL, env).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{ENV_BASE_URL} must start with http:// or https://")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        host = ""
    if not host or any(c.isspace() for c in url) or parts.query or parts.fragment:
        raise ConfigError(f"{ENV_BASE_URL} is not a valid URL")
    agent = _pick(agent_id, ENV_AGENT_ID, env).strip()
    key = _pick(api_key, ENV_API_KEY, env)
    secret_value = _pick(secret, ENV_SECRET, env)
    credentials = Credentials(agent, key, scheme)
    return Settings(url, credentials, secret_value, retry)


def resolve_timeout(timeout: object) -> float | None:
    """Seconds for each request (None: none), or ConfigError. HTTP options take this; the
    httpx option also takes an ``httpx.Timeout`` before it gets here."""
    if timeout is None:
        return None
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
        if timeout != timeout or timeout == float("inf"):
            raise ConfigError("timeout must be a finite number of seconds")
        return float(timeout)
    raise ConfigError("timeout must be a number of seconds > 0, or None for no timeout")


def new_trans_id() -> str:
    """A fresh transId: 32 hex characters of a random UUID."""
    return uuid.uuid4().hex


# ------------------------------------------------------------------------------ requests


class Prepared(NamedTuple):
    """One attempt, ready to send: fresh timestamp, nonce, IV and signature."""

    url: str
    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:  # headers carry the bearer token
        return f"Prepared(url={self.url!r}, body={len(self.body)} B)"


def prepare(
    settings: Settings, path: str, payload: Mapping[str, Any], token: str | None
) -> Prepared:
    """Seal the payload for one attempt and add the bearer token (none for /v2/auth)."""
    headers, body = seal_request(settings.credentials, payload)
    headers["User-Agent"] = USER_AGENT  # a fresh dict per seal: ours to extend
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    return Prepared(settings.base_url + path, headers, body)


def auth_payload(settings: Settings) -> dict[str, str]:
    return {"agentId": settings.credentials.agent_id, "secret": settings.secret}


def member_payload(username: str, trans_id: str) -> dict[str, str]:
    if not isinstance(username, str):
        raise TypeError(f"username must be str, not {type(username).__name__}")
    if not isinstance(trans_id, str):
        raise TypeError(f"trans_id must be str, not {type(trans_id).__name__}")
    return {"username": username, "transId": trans_id}


# ------------------------------------------------------------------------------ responses


class Envelope(NamedTuple):
    """The documented response: code, message, optional data, logUUID. ``clock_skew``: for
    code 83 only, how far the server's ``Date`` is ahead of our clock (seconds), if it sent one."""

    code: int
    message: str
    data: dict[str, Any] | None
    log_uuid: str
    http_status: int
    clock_skew: float | None = None


class Answer(NamedTuple):
    """The server answered with an envelope."""

    envelope: Envelope


class NoAnswer(NamedTuple):
    """No usable answer. ``maybe_processed``: the request may have reached the server and been
    applied; ``retryable``: sending again may help; ``retry_after``: the server asked us to
    wait that long (HTTP 429/503 ``Retry-After``)."""

    error: VPSealError
    maybe_processed: bool
    retryable: bool
    retry_after: float | None = None


Outcome = Union[Answer, NoAnswer]  # noqa: UP007 - a runtime alias on Python 3.10


def not_sent(error: VPSealError, retryable: bool = True) -> NoAnswer:
    """A failure before the request left (connect, pool): it cannot have been applied."""
    return NoAnswer(error, False, retryable)


def maybe_sent(error: VPSealError, retryable: bool = True) -> NoAnswer:
    """A failure after the request may have left (timeout, drop): it may have been applied."""
    return NoAnswer(error, True, retryable)


def too_large(status: int, limit: int) -> NoAnswer:
    """The answer was longer than ``max_response_bytes``: not read, and not trusted."""
    error = ResponseFormatError(
        f"HTTP {status}: response larger than {limit} bytes (max_response_bytes)",
        http_status=status,
    )
    return NoAnswer(error, status < 400, False)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):  # {"code":0,"code":83}: which one would the server mean?
        raise ValueError("duplicate key in a JSON object")
    return doc


# One decoder for every answer (json.loads with keyword arguments builds one per call).
_decode_json = json.JSONDecoder(
    parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=_unique_keys
).decode


def parse_envelope(status: int, content: bytes) -> Envelope:
    """The envelope of a response body, or ResponseFormatError saying what is wrong."""
    try:
        doc = _decode_json(content.decode("utf-8"))
    except (ValueError, RecursionError, ArithmeticError) as exc:  # UnicodeDecodeError too;
        # ArithmeticError: a number beyond Decimal's range (1e99999999999999999999)
        why = "has a duplicate key" if "duplicate key" in str(exc) else "is not JSON"
        raise ResponseFormatError(
            f"HTTP {status}: response body {why} ({len(content)} bytes)", http_status=status
        ) from None
    if type(doc) is not dict:
        raise ResponseFormatError(
            f"HTTP {status}: response is JSON but not an object", http_status=status
        )
    code = doc.get("code")
    message = doc.get("message")
    log_uuid = doc.get("logUUID")
    data = doc.get("data")
    if type(code) is not int or type(message) is not str or type(log_uuid) is not str or (
        data is not None and type(data) is not dict
    ):
        raise ResponseFormatError(
            f"HTTP {status}: response is not the API's envelope ({_envelope_problem(doc)})",
            http_status=status,
        )
    return Envelope(code, message, data, log_uuid, status)


def _envelope_problem(doc: dict[str, Any]) -> str:
    if type(doc.get("code")) is not int:
        return "no integer 'code'"
    if type(doc.get("message")) is not str:
        return "no string 'message'"
    if type(doc.get("logUUID")) is not str:
        return "no string 'logUUID'"
    return "'data' is not an object"


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) as seconds from now, or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit() and len(text) <= 9:
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def clock_skew(date: str | None) -> float | None:
    """How far the server's ``Date`` header is ahead of our clock, in seconds (None if absent
    or unreadable). Only whole seconds are in it, so only a large skew means anything."""
    if not date:
        return None
    try:
        when = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return (when - datetime.now(timezone.utc)).total_seconds()


def _no_headers(name: str) -> str | None:
    return None


def classify_response(
    status: int, content: bytes, header: Callable[[str], str | None] = _no_headers
) -> Outcome:
    """An HTTP answer as an outcome. 5xx: no answer (the server may have applied it). 429:
    refused before it was applied, retry after the server's ``Retry-After``. A body that is
    not the envelope: no answer; after 2xx it may have been applied, after 4xx the server (or
    something in front of it, e.g. a 404 page for a wrong base URL) refused it. ``header``
    looks up a response header (only on the rare paths that need one: Retry-After, Date)."""
    if status >= 500:
        error = TransportError(f"HTTP {status} from server", http_status=status)
        return NoAnswer(error, True, True, retry_after_seconds(header("retry-after")))
    if status == 429:
        wait = retry_after_seconds(header("retry-after"))
        error = RateLimited("HTTP 429: rate limited by the server", retry_after=wait)
        return NoAnswer(error, False, True, wait)
    try:
        envelope = parse_envelope(status, content)
    except ResponseFormatError as exc:
        if status in (404, 405):
            exc = ResponseFormatError(
                f"{exc}; HTTP {status} for an API path: check the base URL "
                f"({ENV_BASE_URL}): it should be the API's root, without the /v2/... path",
                http_status=status,
            )
        return NoAnswer(exc, status < 400, False)
    if envelope.code == CODE_AUTH:
        envelope = envelope._replace(clock_skew=clock_skew(header("date")))
    return Answer(envelope)


def _decimal(data: Mapping[str, Any], name: str) -> Decimal:
    """An amount of the answer: exact, finite, at most 6 places, |x| < 10**15 (amounts.py)."""
    return parse_amount(data.get(name), name)


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ResponseFormatError(f"response data.{name} is not a string")
    return value


def _data(envelope: Envelope) -> dict[str, Any]:
    if envelope.data is None:
        raise ResponseFormatError("successful response has no 'data'")
    return envelope.data


def parse_time(text: str) -> datetime:
    """'YYYY-MM-DDTHH:mm:ss.SSSZ' (or any ISO 8601 with an offset) as an aware UTC datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ResponseFormatError("response data.transactionTime is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ResponseFormatError("response data.transactionTime has no UTC offset")
    return parsed.astimezone(timezone.utc)


def parse_token(envelope: Envelope) -> Token:
    data = _data(envelope)
    value = _text(data, "accessToken")
    if not value or not (value.isascii() and value.isprintable()) or " " in value:
        raise ResponseFormatError("response data.accessToken is not a usable token")
    expires: Any = data.get("expiresIn")
    if not (type(expires) in (int, Decimal) and 0 <= expires <= MAX_TOKEN_LIFETIME):
        raise ResponseFormatError("response data.expiresIn is not a number of seconds")
    return Token(value, float(expires))


def parse_cashout(envelope: Envelope, trans_id: str, attempts: int) -> CashoutResult:
    """A code-0 answer to All Cash Out: a withdrawn amount >= 0 and a balance of 0 after it.
    Anything else is not a success we may report (the flow settles it through the query)."""
    data = _data(envelope)
    amount = _decimal(data, "amount")
    balance = _decimal(data, "balance")
    if amount < 0:
        raise ResponseFormatError("response data.amount of a cash-out is negative")
    if balance != 0:
        raise ResponseFormatError("response data.balance after All Cash Out is not 0")
    return CashoutResult(trans_id, amount, balance, envelope.log_uuid, attempts)


def parse_transaction(envelope: Envelope) -> Transaction:
    data = _data(envelope)
    return Transaction(
        agent=_text(data, "agent"),
        trans_id=_text(data, "transId"),
        transaction_time=parse_time(_text(data, "transactionTime")),
        amount=_decimal(data, "amount"),
        username=_text(data, "username"),
        log_uuid=envelope.log_uuid,
    )


def envelope_error(envelope: Envelope) -> APIError:
    """The typed error for a non-zero code. Code 83 with our clock far from the server's says
    so: a signature's timestamp outside the replay window fails however often it is sent."""
    error = from_response(envelope.code, envelope.message, envelope.log_uuid)
    skew = envelope.clock_skew
    if skew is not None and abs(skew) > CLOCK_SKEW_LIMIT:
        error.message += (
            f" (this machine's clock is {abs(skew):.0f} s "
            f"{'behind' if skew > 0 else 'ahead of'} the server's Date header, beyond the "
            f"API's {CLOCK_SKEW_LIMIT:.0f} s replay window: fix the clock, e.g. with NTP)"
        )
        error.args = (error.message,)
    error.http_status = envelope.http_status
    return error


# ------------------------------------------------------------------------------ token cache


class TokenCache:
    """The current token and when to renew it, with a generation number so that many callers
    that saw the same token rejected renew it once (single flight; the clients hold a lock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # (token, generation, renew_at) replaced as one object: readers need no lock
        self._state: tuple[str | None, int, float] = (None, 0, 0.0)

    def __repr__(self) -> str:
        token, generation, _ = self._state
        return f"TokenCache(generation={generation}, cached={token is not None})"

    @property
    def generation(self) -> int:
        return self._state[1]

    @staticmethod
    def margin(expires_in: float) -> float:
        """Renew ahead of expiry: a tenth of the lifetime, at most a minute."""
        return min(60.0, expires_in / 10)

    def get(self, stale: int | None = None) -> tuple[str, int] | None:
        """(token, generation) if one is usable and is not the generation ``stale``."""
        token, generation, renew_at = self._state
        if token is None or generation == stale or self._clock() >= renew_at:
            return None
        return token, generation

    def refused(self, stale: int | None) -> str | None:
        """The cached token if it is generation ``stale`` (the one the server refused)."""
        token, generation, _ = self._state
        return token if stale is not None and generation == stale else None

    def store(self, token: Token) -> tuple[str, int]:
        """Cache a fresh token (callers hold the client's token lock)."""
        generation = self._state[1] + 1
        renew_at = self._clock() + token.expires_in - self.margin(token.expires_in)
        self._state = (token.value, generation, renew_at)
        return token.value, generation

    def clear(self) -> None:
        self._state = (None, self._state[1], 0.0)


# ------------------------------------------------------------------------------ flows


class Send(NamedTuple):
    """Send one request after ``delay`` seconds; ``renew_token``: the last token was refused."""

    path: str
    payload: Mapping[str, Any]
    authenticated: bool
    delay: float = 0.0
    renew_token: bool = False
    attempt: int = 1
    reason: str = ""

    def __repr__(self) -> str:  # the payload of /v2/auth holds the secret
        return f"Send(path={self.path!r}, attempt={self.attempt}, delay={self.delay:.3f})"


class Done(Generic[T]):
    """The flow ended with a result."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class Raise:
    """The flow ended with an error."""

    __slots__ = ("cause", "error")

    def __init__(self, error: VPSealError, cause: BaseException | None = None) -> None:
        self.error = error
        self.cause = cause


class Wait(NamedTuple):
    """Wait ``delay`` seconds, then call the flow's ``on_wait`` (another holder is busy)."""

    delay: float


Step = Union[Send, Done[T], Raise, Wait]  # noqa: UP007 - a generic alias on Python 3.10


class Flow(Protocol[T]):
    """What a driver runs: start, then one outcome per Send until Done or Raise."""

    def start(self) -> Step[T]: ...

    def on_outcome(self, outcome: Outcome) -> Step[T]: ...

    def on_auth_failure(self, error: VPSealError) -> Step[T]: ...

    def on_wait(self) -> Step[T]: ...

    def on_deadline(self) -> Raise: ...

    @property
    def trans_id(self) -> str | None: ...


class SimpleFlow(Generic[T]):
    """An idempotent request (token, query): retry what may be transient, renew the token once
    on code 83, turn code 0 into a typed result."""

    def __init__(
        self,
        path: str,
        payload: Mapping[str, Any],
        policy: RetryPolicy,
        parse: Callable[[Envelope], T],
        authenticated: bool,
        budget: RetryBudget = UNLIMITED_RETRIES,
    ) -> None:
        self.path = path
        self.payload = payload
        self.policy = policy
        self.parse = parse
        self.authenticated = authenticated
        self.budget = budget
        self.trans_id: str | None = payload.get("transId") if authenticated else None
        self.retries = 0
        self.sent = 0
        self.renewed = False
        self.last_error: VPSealError | None = None

    def _send(self, delay: float = 0.0, renew: bool = False, reason: str = "") -> Send:
        self.sent += 1
        return Send(self.path, self.payload, self.authenticated, delay, renew, self.sent, reason)

    def start(self) -> Step[T]:
        return self._send()

    def on_outcome(self, outcome: Outcome) -> Step[T]:
        if isinstance(outcome, Answer):
            env = outcome.envelope
            if env.code == CODE_OK:
                try:
                    value = self.parse(env)
                except ResponseFormatError as exc:
                    return Raise(exc)
                if self.retries == 0:
                    self.budget.earn()
                return Done(value)
            if env.code == CODE_AUTH and self.authenticated and not self.renewed:
                self.renewed = True
                return self._send(renew=True, reason="token refused (83): renewing it once")
            return Raise(envelope_error(env))
        self.last_error = outcome.error
        if (
            outcome.retryable
            and self.retries < self.policy.max_retries
            and self.budget.spend()
        ):
            self.retries += 1
            delay = self.policy.delay(self.retries, outcome.retry_after)
            return self._send(delay, reason=str(outcome.error))
        return Raise(outcome.error)

    def on_auth_failure(self, error: VPSealError) -> Step[T]:
        return Raise(error)

    def on_wait(self) -> Step[T]:  # pragma: no cover - never waits
        raise AssertionError("SimpleFlow never asks to wait")

    def on_deadline(self) -> Raise:
        last = f" (last: {self.last_error})" if self.last_error is not None else ""
        return Raise(DeadlineExceeded(f"POST {self.path}: the call's deadline passed{last}"))


TOKEN_POLL = 0.05  # seconds between looks at the store while another holder fetches


class TokenFlow:
    """Obtain the agent's token through a TokenStore shared with other clients or processes:
    use the stored one while it is fresh; else fetch it under the store's lock (one holder
    fetches, the others wait for its token, at most ``wait_limit`` seconds in all).

    A store that raises is bypassed (the flow fetches on its own): an outage of the store
    must not stop payments. ``refused``: the token the server just refused (code 83).
    """

    trans_id = None

    def __init__(
        self,
        settings: Settings,
        store: TokenStore,
        key: str,
        refused: str | None,
        lock_ttl: float,
        wait_limit: float,
    ) -> None:
        self.store = store
        self.key = key
        self.refused = refused
        self.lock_ttl = lock_ttl
        self.deadline = time.monotonic() + wait_limit
        self.lock: str | None = None
        payload = auth_payload(settings)
        self.fetch = SimpleFlow(AUTH_PATH, payload, settings.retry, parse_token, False)

    def _store(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except Exception as exc:  # any store failure means: go without it
            logger.warning("token store failed (%s); fetching without it", type(exc).__name__)
            return _STORE_FAILED

    def start(self) -> Step[Token]:
        if self.refused is not None:
            self._store(self.store.discard, self.key, self.refused)
        return self._look()

    def _usable(self) -> Done[Token] | None:
        held = self._store(self.store.load, self.key)
        now = time.time()
        if isinstance(held, StoredToken) and held.value != self.refused and now < held.renew_at():
            return Done(Token(held.value, held.expires_at - now))
        return None

    def _look(self) -> Step[Token]:
        usable = self._usable()
        if usable is not None:
            return usable
        lock = self._store(self.store.try_lock, self.key, self.lock_ttl)
        if lock is not None:
            self.lock = lock
            if lock is not _STORE_FAILED:
                # The previous holder may have stored its token and unlocked between our look
                # and our lock: look again before fetching a second one.
                usable = self._usable()
                if usable is not None:
                    self._unlock()
                    return usable
            return self.fetch.start()
        if time.monotonic() >= self.deadline:
            return Raise(TransportError("no token: the holder of the store's lock stored none"))
        return Wait(TOKEN_POLL)

    def on_wait(self) -> Step[Token]:
        return self._look()

    def on_outcome(self, outcome: Outcome) -> Step[Token]:
        step = self.fetch.on_outcome(outcome)
        if isinstance(step, Done):
            token: Token = step.value
            stored = StoredToken(token.value, time.time() + token.expires_in, token.expires_in)
            self._store(self.store.save, self.key, stored)
        if not isinstance(step, Send):
            self._unlock()
        return step

    def on_auth_failure(self, error: VPSealError) -> Step[Token]:  # pragma: no cover
        self._unlock()
        return Raise(error)

    def on_deadline(self) -> Raise:
        self._unlock()
        return self.fetch.on_deadline()

    def _unlock(self) -> None:
        if self.lock is not None and self.lock is not _STORE_FAILED:
            self._store(self.store.unlock, self.key, self.lock)
        self.lock = None


_STORE_FAILED: Any = "<store failed>"


class CashoutFlow:
    """The cash-out state machine.

    Phase "cashout": send the cash-out (same transId every time). Code 0 is the answer.
    Retryable failures (no answer, HTTP 5xx, codes 20 and 35) are re-sent with backoff; any
    attempt that may have reached the server makes the flow *uncertain*. A final error code
    while uncertain, or running out of retries while uncertain, moves to phase "settle": the
    transaction query decides. Found as a withdrawal of this member: success. Not found: a
    ledger verdict (2, 8, 19) is raised as it is; otherwise re-send if retries remain, else
    OutcomeUnknown.

    Code 3 (transId already used) always goes to the query, even on a first attempt: the
    transId may hold this very cash-out, sent by an earlier call that ended in OutcomeUnknown
    or a crash, which the caller repeats (servers that answer a repeat with code 3 instead of
    the same result). The query shows whose it is; anything but a withdrawal of this member
    under this transId raises TransactionExists. Code 20 to the end is checked the same way
    before WalletLocked is raised: another submission of the same transId may hold the lock.
    """

    def __init__(
        self,
        username: str,
        trans_id: str,
        policy: RetryPolicy,
        budget: RetryBudget = UNLIMITED_RETRIES,
    ) -> None:
        self.username = username
        self.trans_id = trans_id
        self.payload = member_payload(username, trans_id)
        self.policy = policy
        self.budget = budget  # charged for re-sent cash-outs; settling queries are free
        self.phase = "cashout"
        self.attempts = 0  # cash-out requests sent
        self.retries = 0  # re-sends charged to the retry budget
        self.query_retries = 0
        self.queries = 0
        self.uncertain = False
        self.renewed = False
        self.pending: VPSealError | None = None  # the answer the query must confirm
        self.last_error: VPSealError | None = None

    # -- steps

    def _cashout(self, delay: float = 0.0, renew: bool = False, reason: str = "") -> Send:
        self.phase = "cashout"
        self.attempts += 1
        return Send(CASHOUT_PATH, self.payload, True, delay, renew, self.attempts, reason)

    def _query(self, delay: float = 0.0, renew: bool = False, reason: str = "") -> Send:
        self.phase = "settle"
        self.queries += 1
        return Send(QUERY_PATH, self.payload, True, delay, renew, self.queries, reason)

    def _unknown(self, reason: str, cause: BaseException | None = None) -> Raise:
        return Raise(OutcomeUnknown(self.trans_id, reason), cause)

    def _settle(self, error: VPSealError) -> Step[CashoutResult]:
        self.pending = error
        self.query_retries = 0
        return self._query(reason=f"settling through the transaction query after: {error}")

    def _retry(
        self, error: VPSealError, retry_after: float | None = None
    ) -> Step[CashoutResult]:
        self.last_error = error
        if self.retries < self.policy.max_retries and self.budget.spend():
            self.retries += 1
            delay = self.policy.delay(self.retries, retry_after)
            return self._cashout(delay, reason=str(error))
        if self.uncertain or isinstance(error, WalletLocked):
            # Locked to the end: none of our attempts was applied, but the lock may be held by
            # another submission of this same transId (a second process, a repeat after a
            # crash) that applies it; "locked" would then be a false failure. The query knows.
            return self._settle(error)
        return Raise(error)  # no attempt can have been applied: the error is the truth

    # -- protocol

    def start(self) -> Step[CashoutResult]:
        return self._cashout()

    def on_wait(self) -> Step[CashoutResult]:  # pragma: no cover - never waits
        raise AssertionError("CashoutFlow never asks to wait")

    def on_deadline(self) -> Raise:
        """The call's time is up. Any attempt that may have been applied, or a transId that a
        query was to explain, makes the outcome unknown; otherwise nothing was applied."""
        last = f" (last: {self.last_error})" if self.last_error is not None else ""
        if self.uncertain or self.phase == "settle":
            return self._unknown(f"the call's deadline passed{last}", self.last_error)
        return Raise(DeadlineExceeded(f"cash-out: the call's deadline passed{last}"))

    def on_auth_failure(self, error: VPSealError) -> Step[CashoutResult]:
        if self.uncertain:
            return self._unknown(f"could not obtain a token to settle it: {error}", error)
        return Raise(error)

    def on_outcome(self, outcome: Outcome) -> Step[CashoutResult]:
        if self.phase == "cashout":
            return self._on_cashout(outcome)
        return self._on_query(outcome)

    def _on_cashout(self, outcome: Outcome) -> Step[CashoutResult]:
        if isinstance(outcome, NoAnswer):
            if outcome.maybe_processed:
                self.uncertain = True
            if outcome.retryable:
                return self._retry(outcome.error, outcome.retry_after)
            if self.uncertain:
                return self._settle(outcome.error)
            return Raise(outcome.error)
        env = outcome.envelope
        if env.code == CODE_OK:
            try:
                result = parse_cashout(env, self.trans_id, self.attempts)
            except ResponseFormatError as exc:  # it happened, but the answer is unreadable
                self.uncertain = True
                return self._settle(exc)
            if self.attempts == 1:
                self.budget.earn()
            return Done(result)
        error = envelope_error(env)
        if env.code == CODE_AUTH and not self.renewed:
            self.renewed = True  # the request was refused before it was applied
            return self._cashout(renew=True, reason="token refused (83): renewing it once")
        if env.code == CODE_EXISTS:  # whose transaction holds this transId? the query knows
            return self._settle(error)
        if env.code == CODE_LOCKED:
            return self._retry(error)
        if env.code == CODE_PENDING:
            self.uncertain = True  # the server holds this transId, not yet final
            return self._retry(error)
        if env.code == CODE_INTERNAL:
            self.uncertain = True  # a server failure says nothing about what was applied
        if self.uncertain:
            return self._settle(error)
        return Raise(error)

    def _on_query(self, outcome: Outcome) -> Step[CashoutResult]:
        pending = self.pending
        assert pending is not None  # _settle sets it before the first query
        if isinstance(outcome, NoAnswer):
            self.last_error = outcome.error
            if outcome.retryable and self.query_retries < self.policy.max_retries:
                self.query_retries += 1
                delay = self.policy.delay(self.query_retries, outcome.retry_after)
                return self._query(delay, reason=str(outcome.error))
            return self._unknown(f"the transaction query failed: {outcome.error}", outcome.error)
        env = outcome.envelope
        if env.code == CODE_OK:
            try:
                tx = parse_transaction(env)
            except ResponseFormatError as exc:
                return self._unknown(f"unreadable transaction query answer: {exc}", exc)
            if tx.trans_id != self.trans_id or tx.username != self.username:
                return self._unknown("the query answered about another transaction")
            if tx.amount >= 0:  # this transId is not a withdrawal: not ours to report
                if not self.uncertain or isinstance(pending, TransactionExists):
                    return Raise(pending)
                return self._unknown("the transId belongs to a deposit, not a cash-out")
            return Done(
                CashoutResult(
                    self.trans_id,
                    -tx.amount,
                    Decimal(0),
                    tx.log_uuid,
                    self.attempts,
                    settled_by_query=True,
                )
            )
        if env.code in (CODE_NOT_FOUND, CODE_MEMBER_NOT_FOUND):
            if not self.uncertain:
                return Raise(pending)  # no attempt of ours can have been applied: it stands
            if isinstance(pending, APIError) and pending.code in LEDGER_VERDICTS:
                return Raise(pending)
            if self.retries < self.policy.max_retries and self.budget.spend():
                self.retries += 1  # not there (yet): re-sending the same transId is safe
                return self._cashout(
                    self.policy.delay(self.retries), reason="query found no transaction"
                )
            return self._unknown(
                f"no transaction found, but an earlier attempt may still be applied "
                f"(last answer: {pending})",
                pending,
            )
        if env.code == CODE_AUTH and not self.renewed:
            self.renewed = True
            return self._query(renew=True, reason="token refused (83): renewing it once")
        error = envelope_error(env)
        self.last_error = error
        if env.code in (CODE_PENDING, CODE_INTERNAL) and (
            self.query_retries < self.policy.max_retries
        ):
            self.query_retries += 1
            return self._query(self.policy.delay(self.query_retries), reason=str(error))
        return self._unknown(f"the transaction query answered: {error}", error)


# ------------------------------------------------------------------------------ logging


def log_attempt(send: Send, outcome: Outcome, elapsed: float, trans_id: str | None) -> None:
    """One line per request: path, transId, attempt, code and logUUID (never a payload,
    header, token or secret)."""
    ms = elapsed * 1000
    tid = trans_id or "-"
    if isinstance(outcome, Answer):
        env = outcome.envelope
        level = logging.DEBUG if env.code == CODE_OK else logging.INFO
        if not logger.isEnabledFor(level):
            return
        logger.log(
            level,
            "POST %s transId=%s attempt=%d code=%d logUUID=%s http=%d %.1fms",
            send.path, tid, send.attempt, env.code, env.log_uuid, env.http_status, ms,
        )  # fmt: skip
    else:
        logger.info(
            "POST %s transId=%s attempt=%d no answer (%s; may have been applied: %s) %.1fms",
            send.path, tid, send.attempt, outcome.error, outcome.maybe_processed, ms,
        )  # fmt: skip


def log_retry(send: Send, trans_id: str | None) -> None:
    logger.info(
        "POST %s transId=%s attempt=%d in %.3fs: %s",
        send.path, trans_id or "-", send.attempt, send.delay, send.reason,
    )  # fmt: skip


__all__ = [
    "CashoutFlow",
    "CashoutResult",
    "RetryPolicy",
    "Settings",
    "SimpleFlow",
    "TokenCache",
    "Transaction",
]
