"""Whole requests: a payload to signed, encrypted headers + body, and back.

Sealing crosses into the engine once (IV, nonce, GCM, wire string, JSON body, signature).
Opening crosses once too (signature check, wire decode, GCM); the replay guard runs between
the signature check and the decryption's verdict, as SPEC.md orders them. Bodies that are valid
JSON but not byte-for-byte ``{"cipherText":"..."}`` (extra spaces, escapes) take a slower,
equally strict path in Python.

Opening always takes a guard: ``ReplayGuard()`` (or one on a shared RedisNonceStore), or, as
the explicit opt-out of the nonce check, ``ReplayGuard.window_only()``, which still refuses a
timestamp outside the window (default 5 minutes either way).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from vpseal import _json
from vpseal._backend import KeyEngine, select
from vpseal._protocol import (
    OPEN_BAD_NONCE,
    OPEN_BAD_SIGNATURE,
    OPEN_BAD_TIMESTAMP,
    OPEN_NOT_CANONICAL,
    OPEN_OK,
)
from vpseal.aead import KEY_SIZE
from vpseal.errors import (
    ConfigError,
    DecryptionError,
    InvalidTag,
    PayloadError,
    RequestFormatError,
    SignatureError,
    VPSealError,
    WireFormatError,
)
from vpseal.keys import parse_api_key
from vpseal.replay import ReplayGuard
from vpseal.signing import Scheme, scheme_code, verify_signature
from vpseal.wire import decode_wire

MAX_BODY_BYTES = 1 << 20
_json_scan = _json.scan
CONTENT_TYPE = "application/json"
_HEX = frozenset("0123456789abcdef")
_DIGITS = frozenset("0123456789")


class Credentials:
    """An agent's id and AES key (from the 64-hex API KEY), with the key's engine made once.

    The key is never shown: not in repr, str or any error message.
    """

    __slots__ = ("_agent", "_code", "_engine", "agent_id", "scheme")

    def __init__(
        self,
        agent_id: str,
        api_key: str | bytes,
        scheme: Scheme = "transfer",
        *,
        backend: str | None = None,
    ) -> None:
        """backend: None for the process-wide engine, or "native" / "fallback" for these
        credentials alone (cross-backend checks, benchmarks)."""
        if not isinstance(agent_id, str) or not agent_id:
            raise ConfigError("agent_id must be a non-empty str")
        if not (agent_id.isascii() and agent_id.isprintable()) or " " in agent_id:
            raise ConfigError("agent_id must be printable ASCII without spaces (a header value)")
        if isinstance(api_key, str):
            key = parse_api_key(api_key)
        elif isinstance(api_key, (bytes, bytearray)) and len(api_key) == KEY_SIZE:
            key = bytes(api_key)
        else:
            raise ConfigError("api_key must be the 64-hex API KEY or its 32 bytes")
        try:
            self._code = scheme_code(scheme)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.agent_id = agent_id
        self.scheme = scheme
        self._agent = agent_id.encode("ascii")
        self._engine = select(backend).KeyEngine(key)

    def __repr__(self) -> str:
        return f"Credentials(agent_id={self.agent_id!r}, api_key=<hidden>, scheme={self.scheme!r})"

    __str__ = __repr__


class Keyring(Mapping[str, Credentials]):
    """Credentials by agent id, for a gateway that opens requests of many agents."""

    def __init__(self, credentials: Iterable[Credentials] = ()) -> None:
        self._by_agent: dict[str, Credentials] = {}
        for item in credentials:
            self.add(item)

    def add(self, credentials: Credentials) -> None:
        if not isinstance(credentials, Credentials):
            raise TypeError("Keyring holds Credentials")
        self._by_agent[credentials.agent_id] = credentials

    def __getitem__(self, agent_id: str) -> Credentials:
        return self._by_agent[agent_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_agent)

    def __len__(self) -> int:
        return len(self._by_agent)

    def __repr__(self) -> str:
        return f"Keyring(agents={sorted(self._by_agent)!r})"


class SealedRequest(NamedTuple):
    """Headers and the exact body bytes that were signed; send them as they are.
    A tuple, so ``headers, body = seal_request(...)`` works."""

    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:
        return f"SealedRequest(agent={self.headers.get('x-agentid')!r}, body={len(self.body)} B)"


class OpenedRequest(NamedTuple):
    """A verified, decrypted request: who sent it, when, and its payload (amounts Decimal)."""

    agent_id: str
    timestamp_ms: int
    nonce: str
    payload: dict[str, Any]

    def __repr__(self) -> str:  # the payload is plaintext: keep it out of logs
        return f"OpenedRequest(agent_id={self.agent_id!r}, timestamp_ms={self.timestamp_ms})"


# NamedTuple's own constructor is a Python function; the hot paths build the tuples directly.
_tuple_new: Any = tuple.__new__


# ---------------------------------------------------------------- sealing


def payload_bytes(payload: Mapping[str, Any] | bytes) -> bytes:
    """Compact UTF-8 JSON of a mapping (non-ASCII kept, Decimal written exactly), or the bytes."""
    if isinstance(payload, bytes):
        if not payload:
            raise PayloadError("payload bytes are empty")
        return payload
    if not isinstance(payload, Mapping):
        raise PayloadError(f"payload must be a mapping or JSON bytes, not {type(payload).__name__}")
    try:
        return _json.dumps(payload)
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        reason = str(exc)  # never the text itself: a UnicodeEncodeError holds all of it (.object)
    # raised here, after the except clause, so that the error has no __context__
    raise PayloadError(f"payload cannot be sent as JSON: {reason}")


def seal_request(
    credentials: Credentials,
    payload: Mapping[str, Any] | bytes,
    *,
    timestamp_ms: int | None = None,
    nonce: str | None = None,
    iv: bytes | None = None,
) -> SealedRequest:
    """Encrypt and sign one request. Leave timestamp_ms, nonce and iv unset outside tests:
    they default to now and to fresh CSPRNG bytes (an IV must never repeat under a key)."""
    if type(credentials) is not Credentials:
        raise TypeError("credentials must be vpseal.Credentials")
    plaintext = _plaintext(payload)
    if timestamp_ms is None and nonce is None and iv is None:
        body, timestamp, nonce_text, signature = credentials._engine.seal(
            credentials._code, credentials._agent, plaintext
        )
    else:
        body, timestamp, nonce_text, signature = credentials._engine.seal(
            credentials._code, credentials._agent, plaintext, *_fixed(timestamp_ms, nonce, iv)
        )
    return _sealed(credentials.agent_id, timestamp, nonce_text, signature, body)


def _sealed(
    agent_id: str, timestamp: str, nonce: str, signature: str, body: bytes
) -> SealedRequest:
    headers = {
        "Content-Type": CONTENT_TYPE,
        "x-agentid": agent_id,
        "x-timestamp": timestamp,
        "x-nonce": nonce,
        "x-signature": signature,
    }
    return _tuple_new(SealedRequest, (headers, body))  # type: ignore[no-any-return]


def _fixed(
    timestamp_ms: int | None, nonce: str | None, iv: bytes | None
) -> tuple[bytes | None, bytes | None, bytes | None]:
    """Validate the values a known-answer test fixes, as the engine wants them."""
    timestamp = None
    if timestamp_ms is not None:
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int):
            raise ValueError("timestamp_ms must be an int of milliseconds")
        if not 0 <= timestamp_ms < 10**16:
            raise ValueError("timestamp_ms must be between 0 and 16 digits")
        timestamp = str(timestamp_ms).encode("ascii")
    if nonce is not None and (
        not isinstance(nonce, str) or len(nonce) != 32 or not _HEX.issuperset(nonce)
    ):
        raise ValueError("nonce must be 32 lowercase hex characters")
    if iv is not None and (not isinstance(iv, bytes) or len(iv) != 12):
        raise ValueError("iv must be 12 bytes")
    return timestamp, None if nonce is None else nonce.encode("ascii"), iv


def seal_many(
    credentials: Credentials, payloads: Iterable[Mapping[str, Any] | bytes]
) -> list[SealedRequest]:
    """seal_request for many payloads in one engine call (the GIL is released while it runs).
    All share one timestamp; each gets its own nonce and IV."""
    if type(credentials) is not Credentials:
        raise TypeError("credentials must be vpseal.Credentials")
    plaintexts = [_plaintext(p) for p in payloads]
    agent = credentials.agent_id
    sealed = credentials._engine.seal_many(credentials._code, credentials._agent, plaintexts)
    return [
        _sealed(agent, timestamp, nonce, signature, body)
        for body, timestamp, nonce, signature in sealed
    ]


def _plaintext(payload: Mapping[str, Any] | bytes) -> bytes:
    """payload_bytes with the common cases first (the hot path of every seal); payload_bytes
    still decides, and explains, everything unusual."""
    if type(payload) is dict:
        try:
            return _json.dumps(payload)
        except (TypeError, ValueError, RecursionError):
            pass
    elif type(payload) is bytes and payload:
        return payload
    return payload_bytes(payload)


# ---------------------------------------------------------------- opening

_HEADER_NAMES = ("x-agentid", "x-timestamp", "x-nonce", "x-signature")


def _find_headers(headers: object) -> tuple[str, str, str, str]:
    """The four protocol headers, looked up case-insensitively in any mapping."""
    if not isinstance(headers, Mapping):
        raise RequestFormatError("headers must be a mapping")
    lowered = {str(k).lower(): v for k, v in headers.items()}
    values = []
    for name in _HEADER_NAMES:
        value = lowered.get(name)
        if value is None:
            raise RequestFormatError(f"missing header {name}")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str):
            raise RequestFormatError(f"header {name} must be a string")
        if type(value) is not str:  # a subclass may lie in len() or + : its exact text only
            value = str.__str__(value)
        values.append(value)
    return values[0], values[1], values[2], values[3]


def _credentials_for(keys: Credentials | Mapping[str, Credentials], agent_id: str) -> Credentials:
    """The credentials whose own agent id is x-agentid: a mapping entry filed under another
    name is not used (it would open, and replay-check, under an alias)."""
    if not isinstance(keys, (Credentials, Mapping)):
        raise TypeError("keys must be Credentials or a Keyring (mapping of agent id)")
    if not isinstance(agent_id, str):
        raise RequestFormatError("x-agentid must be a string")
    found = keys if isinstance(keys, Credentials) else keys.get(agent_id)
    if isinstance(found, Credentials) and found.agent_id == agent_id:
        return found
    raise RequestFormatError("unknown agent in x-agentid")


def _as_body(body: object, max_body: int) -> bytes:
    if isinstance(body, str):
        try:
            body = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no bytes were ever sent like that
            raise RequestFormatError("body is not valid text") from None
    elif isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    elif not isinstance(body, bytes):
        raise RequestFormatError("body must be bytes")
    if len(body) > max_body:
        raise RequestFormatError(f"body larger than {max_body} bytes")
    return body


def _check_formats(timestamp: str, nonce: str, signature: str) -> None:
    """The header checks the engine does, in Python, for the paths that do not reach it."""
    if not 0 < len(timestamp) <= 16 or not _DIGITS.issuperset(timestamp):
        raise RequestFormatError("x-timestamp must be Unix time in milliseconds (digits)")
    if len(nonce) != 32 or not _HEX.issuperset(nonce):
        raise RequestFormatError("x-nonce must be 32 lowercase hex characters")
    if not signature.isascii():
        raise SignatureError("signature verification failed")


class _Received:
    """One request's validated pieces, carried from the engine's verdict to the result."""

    __slots__ = ("agent_id", "body", "credentials", "joined", "nonce", "signature", "timestamp")

    def __init__(
        self,
        credentials: Credentials,
        agent_id: str,
        timestamp: str,
        nonce: str,
        signature: str,
        body: bytes,
        joined: bytes | None = None,
    ) -> None:
        self.credentials = credentials
        self.agent_id = agent_id
        self.timestamp = timestamp
        self.nonce = nonce
        self.signature = signature
        self.body = body
        # the engine's view of the three header values: ASCII, back to back
        self.joined = (timestamp + nonce + signature).encode("ascii") if joined is None else joined


def _receive(
    keys: Credentials | Mapping[str, Credentials],
    headers: Mapping[str, str],
    body: object,
    max_body: int,
) -> _Received:
    agent_id, timestamp, nonce, signature = _find_headers(headers)
    credentials = _credentials_for(keys, agent_id)
    body = _as_body(body, max_body)
    _check_formats(timestamp, nonce, signature)
    return _Received(credentials, agent_id, timestamp, nonce, signature, body)


_FORMAT_ERRORS = {
    OPEN_BAD_TIMESTAMP: "x-timestamp must be Unix time in milliseconds (digits)",
    OPEN_BAD_NONCE: "x-nonce must be 32 lowercase hex characters",
}
_NOT_AN_OBJECT = "decrypted payload is not a JSON object"
_UNDECRYPTABLE = "cipherText cannot be decrypted with this agent's key"

# Plaintext never leaves in an exception: not in a message, not in __context__ (a JSONDecodeError
# holds the whole text in .doc, a UnicodeDecodeError in .object), and not in the locals of a
# frame on the traceback (error reporters such as Sentry record those). So the functions that
# hold a plaintext never let an exception out while it is bound: _opened returns None for a
# payload that is not a JSON object, and the callers raise RequestFormatError themselves, after
# the plaintext is unbound (``finally: plaintext = None`` also covers a ReplayError or a store's
# error raised while it is held).


def _opened(agent_id: str, timestamp_ms: int, nonce: str, plaintext: bytes) -> OpenedRequest | None:
    """The result of a request whose plaintext decrypted, or None if the plaintext is not a
    JSON object. Raises nothing: whatever the parser raised (and the text it holds) is
    dropped here."""
    try:  # the common case first
        payload, end = _json_scan(plaintext.decode("utf-8"), 0)
        if end == len(plaintext) and type(payload) is dict:
            return _tuple_new(OpenedRequest, (agent_id, timestamp_ms, nonce, payload))  # type: ignore[no-any-return]
    except (StopIteration, ValueError, RecursionError, ArithmeticError):
        pass  # the full parser decides (ArithmeticError: a number beyond Decimal)
    try:
        payload = _json.loads(plaintext)
    except (ValueError, RecursionError, ArithmeticError):
        return None
    if type(payload) is not dict:
        return None
    return OpenedRequest(agent_id, timestamp_ms, nonce, payload)


def _finish(
    got: _Received, status: int, plaintext: bytes | None, guard: ReplayGuard, now: int | None
) -> OpenedRequest:
    """Turn an engine verdict into a result, in SPEC order: signature, time window,
    decryption, and only then the replay record (a bad tag must not burn the nonce)."""
    try:
        if status == OPEN_NOT_CANONICAL:
            return _open_slow(got, guard, now)
        if status in _FORMAT_ERRORS:
            raise RequestFormatError(_FORMAT_ERRORS[status])
        if status == OPEN_BAD_SIGNATURE:
            raise SignatureError("signature verification failed")
        timestamp_ms = int(got.timestamp)
        if status != OPEN_OK or plaintext is None:
            guard._check_window(timestamp_ms, now)  # records nothing
            raise DecryptionError(_UNDECRYPTABLE)
        guard._admit(got.agent_id, timestamp_ms, got.nonce, got.body, now)
        opened = _opened(got.agent_id, timestamp_ms, got.nonce, plaintext)
    finally:
        plaintext = None
    if opened is None:
        raise RequestFormatError(_NOT_AN_OBJECT)
    return opened


def _open_slow(got: _Received, guard: ReplayGuard, now: int | None) -> OpenedRequest:
    """Any JSON spelling of {"cipherText": "..."}: parse, verify, check the window, decrypt,
    record."""
    try:
        outer = _json.loads(got.body)
    except (ValueError, RecursionError):
        outer = None  # (the body is not secret, but its parse error is dropped all the same)
    if not isinstance(outer, dict):
        raise RequestFormatError('body is not JSON {"cipherText": "..."}')
    if set(outer) != {"cipherText"}:
        raise RequestFormatError('body must be exactly {"cipherText": "..."}')
    wire = outer["cipherText"]
    if not isinstance(wire, str):
        raise RequestFormatError("cipherText must be a string")
    credentials = got.credentials
    signed = got.body if credentials.scheme == "transfer" else wire
    if not verify_signature(
        got.agent_id, got.timestamp, got.nonce, signed, got.signature, credentials.scheme
    ):
        raise SignatureError("signature verification failed")
    timestamp_ms = int(got.timestamp)
    current = guard._check_window(timestamp_ms, now)  # records nothing
    try:
        parts: tuple[bytes, bytes, bytes] | None = decode_wire(wire)
    except WireFormatError:
        parts = None
    if parts is None:
        raise DecryptionError("cipherText is not a valid wire string")
    iv, tag, ciphertext = parts
    plaintext: bytes | None
    try:
        plaintext = credentials._engine.decrypt(iv, ciphertext + tag)
    except InvalidTag:
        plaintext = None
    try:
        if plaintext is None:
            raise DecryptionError(_UNDECRYPTABLE)
        message_id = wire[:40].encode("ascii")  # decode_wire accepted it: base64 characters
        guard._admit(got.agent_id, timestamp_ms, got.nonce, message_id, current, 0, 40)
        opened = _opened(got.agent_id, timestamp_ms, got.nonce, plaintext)
    finally:
        plaintext = None
    if opened is None:
        raise RequestFormatError(_NOT_AN_OBJECT)
    return opened


# What makes the fast header read give way to _receive (which explains the problem).
_UNUSUAL_HEADERS = (KeyError, TypeError, UnicodeEncodeError, AttributeError)


def _read_headers(headers: Mapping[str, str]) -> tuple[str, str, str, str, bytes]:
    """The four protocol headers under their exact lowercase names (or from a case-insensitive
    mapping), and the engine's view of the last three: ASCII, back to back. Anything unusual
    raises one of _UNUSUAL_HEADERS (values that are not exact str included: _find_headers
    converts those)."""
    agent_id = headers["x-agentid"]
    timestamp = headers["x-timestamp"]
    nonce = headers["x-nonce"]
    signature = headers["x-signature"]
    if (
        type(timestamp) is not str
        or type(nonce) is not str
        or type(signature) is not str
        or type(agent_id) is not str
    ):
        raise TypeError
    joined = (timestamp + nonce + signature).encode("ascii")
    return agent_id, timestamp, nonce, signature, joined


_GUARD_REQUIRED = (
    "guard must be a vpseal.ReplayGuard: ReplayGuard() (or one on a shared RedisNonceStore), "
    "or ReplayGuard.window_only() to opt out of the nonce check explicitly"
)


def _require_guard(guard: object) -> None:
    """TypeError unless guard is a ReplayGuard: None (or a forgotten setting) is never taken
    to mean "no checks"."""
    if type(guard) is not ReplayGuard and not isinstance(guard, ReplayGuard):
        raise TypeError(f"{_GUARD_REQUIRED}, not {type(guard).__name__}")


def open_request(
    keys: Credentials | Mapping[str, Credentials],
    headers: Mapping[str, str],
    body: bytes,
    *,
    guard: ReplayGuard,
    now_ms: int | None = None,
    max_body: int = MAX_BODY_BYTES,
) -> OpenedRequest:
    """Verify, replay-check, decrypt and parse one request, or raise a RequestError subclass
    (SignatureError/ReplayError 83, DecryptionError 84, RequestFormatError 11, NonceStoreError
    7). No exception carries the plaintext, in its message, its chain or its traceback's frames.

    guard is required (keyword only; leaving it out, or passing None, is a TypeError):
    ``ReplayGuard()`` refuses a timestamp more than its window (default 5 minutes) from now and
    any nonce or message seen before; ``ReplayGuard.window_only()`` is the explicit opt-out of
    the nonce check and still refuses a timestamp outside the window. The window is checked
    before decryption; the request is recorded only once its GCM tag has verified, so a forged
    request cannot burn a genuine one's nonce. now_ms replaces the clock for the window check
    (tests with fixed timestamps)."""
    _require_guard(guard)
    try:
        agent_id, timestamp, nonce, signature, joined = _read_headers(headers)
    except _UNUSUAL_HEADERS:
        got = _receive(keys, headers, body, max_body)
    else:
        if type(keys) is Credentials and keys.agent_id == agent_id:
            credentials = keys
        else:
            credentials = _credentials_for(keys, agent_id)
        if type(body) is not bytes or len(body) > max_body:
            body = _as_body(body, max_body)
        status, plaintext = credentials._engine.open(
            credentials._code, credentials._agent, joined, len(timestamp), len(nonce), body
        )
        if status == OPEN_OK and plaintext is not None:
            try:
                timestamp_ms = int(timestamp)
                guard._admit(agent_id, timestamp_ms, nonce, body, now_ms)
                opened = _opened(agent_id, timestamp_ms, nonce, plaintext)
            finally:
                plaintext = None
            if opened is None:
                raise RequestFormatError(_NOT_AN_OBJECT)
            return opened
        got = _Received(credentials, agent_id, timestamp, nonce, signature, body, joined)
        return _finish(got, status, plaintext, guard, now_ms)
    credentials = got.credentials
    status, plaintext = credentials._engine.open(
        credentials._code, credentials._agent, got.joined, len(got.timestamp), len(got.nonce),
        got.body,
    )  # fmt: skip
    try:
        return _finish(got, status, plaintext, guard, now_ms)
    finally:
        plaintext = None


def open_many(
    keys: Credentials | Mapping[str, Credentials],
    requests: Iterable[SealedRequest | tuple[Mapping[str, str], bytes]],
    *,
    guard: ReplayGuard,
    now_ms: int | None = None,
    max_body: int = MAX_BODY_BYTES,
) -> list[OpenedRequest | VPSealError]:
    """open_request for many requests in one engine call, whatever agents they come from (the
    GIL is released while it runs); each slot holds the opened request or the error that
    request alone raised (without a traceback: it was never raised to the caller). guard is
    required, as for open_request (a missing or None guard is a TypeError raised before
    anything is opened, not an error in each slot). Duplicates within a batch are refused
    after the first, in batch order."""
    _require_guard(guard)
    results: list[Any] = []
    # per engine class (one unless credentials mix backends): the batch, and each item's slot
    groups: dict[type[KeyEngine], tuple[list[Any], list[Any]]] = {}
    single = keys if type(keys) is Credentials else None
    for index, request in enumerate(requests):
        results.append(None)
        try:
            headers, body = request
            try:
                agent_id, timestamp, nonce, signature, joined = _read_headers(headers)
            except _UNUSUAL_HEADERS:
                got = _receive(keys, headers, body, max_body)
                creds, body, joined = got.credentials, got.body, got.joined
                agent_id, timestamp, nonce, signature = (
                    got.agent_id, got.timestamp, got.nonce, got.signature,
                )  # fmt: skip
            else:
                if single is not None and single.agent_id == agent_id:
                    creds = single
                else:
                    creds = _credentials_for(keys, agent_id)
                if type(body) is not bytes or len(body) > max_body:
                    body = _as_body(body, max_body)
        except VPSealError as exc:
            results[index] = exc.with_traceback(None)
            continue
        except (TypeError, ValueError):
            results[index] = RequestFormatError("request must be (headers, body) or SealedRequest")
            continue
        engine = creds._engine
        group = groups.get(type(engine))
        if group is None:
            group = groups[type(engine)] = ([], [])
        group[0].append(
            (engine, creds._code, creds._agent, joined, len(timestamp), len(nonce), body)
        )
        group[1].append((index, creds, agent_id, timestamp, nonce, signature))
    verdicts: Any = None
    plaintext: bytes | None = None
    try:
        for engine_class, (items, slots) in groups.items():
            verdicts = engine_class.open_batch(items)
            for slot, verdict, item in zip(slots, verdicts, items, strict=True):
                index, creds, agent_id, timestamp, nonce, signature = slot
                status, plaintext = verdict
                try:
                    if status == OPEN_OK and plaintext is not None:
                        timestamp_ms = int(timestamp)
                        guard._admit(agent_id, timestamp_ms, nonce, item[6], now_ms)
                        opened = _opened(agent_id, timestamp_ms, nonce, plaintext)
                        if opened is None:
                            results[index] = RequestFormatError(_NOT_AN_OBJECT)
                        else:
                            results[index] = opened
                    else:
                        body, joined = item[6], item[3]
                        got = _Received(creds, agent_id, timestamp, nonce, signature, body, joined)
                        results[index] = _finish(got, status, plaintext, guard, now_ms)
                except VPSealError as exc:
                    results[index] = exc.with_traceback(None)
        return results
    finally:
        # if something unexpected escapes (say, a custom store's own exception), no plaintext
        # stays reachable from this frame: not the engine's verdicts, not the opened payloads
        verdict = verdicts = plaintext = None
        del results


__all__ = [
    "Credentials",
    "Keyring",
    "OpenedRequest",
    "SealedRequest",
    "open_many",
    "open_request",
    "payload_bytes",
    "seal_many",
    "seal_request",
]
