"""Whole requests: a payload to signed, encrypted headers + body, and back.

Sealing crosses into the engine once (IV, nonce, GCM, wire string, JSON body, signature).
Opening crosses once too (signature check, wire decode, GCM); the replay guard runs between
the signature check and the decryption's verdict, as SPEC.md orders them. Bodies that are valid
JSON but not byte-for-byte ``{"cipherText":"..."}`` (extra spaces, escapes) take a slower,
equally strict path in Python.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from vpseal._backend import (
    BODY_PREFIX,
    OPEN_BAD_SIGNATURE,
    OPEN_BAD_TAG,
    OPEN_BAD_WIRE,
    OPEN_NOT_CANONICAL,
    OPEN_OK,
    engine,
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
from vpseal.replay import ReplayGuard, now_ms
from vpseal.signing import Scheme, scheme_code, verify_signature
from vpseal.wire import decode_wire

MAX_BODY_BYTES = 1 << 20
CONTENT_TYPE = "application/json"
_HEX = frozenset("0123456789abcdef")
_DIGITS = frozenset("0123456789")
_MESSAGE_ID = slice(len(BODY_PREFIX), len(BODY_PREFIX) + 40)  # b64(iv) + b64(tag)

_encode_str = json.encoder.encode_basestring  # what ensure_ascii=False writes for a str


class Credentials:
    """An agent's id and AES key (from the 64-hex API KEY), with the key's engine made once.

    The key is never shown: not in repr, str or any error message.
    """

    __slots__ = ("_agent", "_code", "_engine", "agent_id", "scheme")

    def __init__(self, agent_id: str, api_key: str | bytes, scheme: Scheme = "transfer") -> None:
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
        self._engine = engine.KeyEngine(key)

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


class SealedRequest:
    """Headers and the exact body bytes that were signed; send them as they are."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: dict[str, str], body: bytes) -> None:
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"SealedRequest(agent={self.headers.get('x-agentid')!r}, body={len(self.body)} B)"


class OpenedRequest:
    """A verified, decrypted request: who sent it, when, and its payload (amounts Decimal)."""

    __slots__ = ("agent_id", "nonce", "payload", "timestamp_ms")

    def __init__(self, agent_id: str, timestamp_ms: int, nonce: str, payload: dict[str, Any]):
        self.agent_id = agent_id
        self.timestamp_ms = timestamp_ms
        self.nonce = nonce
        self.payload = payload

    def __repr__(self) -> str:  # the payload is plaintext: keep it out of logs
        return f"OpenedRequest(agent_id={self.agent_id!r}, timestamp_ms={self.timestamp_ms})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OpenedRequest):
            return NotImplemented
        return (self.agent_id, self.timestamp_ms, self.nonce, self.payload) == (
            other.agent_id,
            other.timestamp_ms,
            other.nonce,
            other.payload,
        )

    __hash__ = None  # type: ignore[assignment]


# ---------------------------------------------------------------- sealing


def _decimal_default(value: object) -> object:
    if isinstance(value, Decimal):
        raise _HasDecimal
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _HasDecimal(Exception):
    pass


_encode_json_checked = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_decimal_default
).encode


def payload_bytes(payload: Mapping[str, Any] | bytes) -> bytes:
    """Compact UTF-8 JSON of a mapping (non-ASCII kept, Decimal written exactly), or the bytes."""
    if isinstance(payload, bytes):
        if not payload:
            raise PayloadError("payload bytes are empty")
        return payload
    if not isinstance(payload, Mapping):
        raise PayloadError(f"payload must be a mapping or JSON bytes, not {type(payload).__name__}")
    try:
        try:
            text = _encode_json_checked(payload)
        except _HasDecimal:
            text = _json_with_decimals(payload)
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise PayloadError(f"payload cannot be sent as JSON: {exc}") from None


def _json_with_decimals(value: Any) -> str:
    """The compact JSON that json.dumps would write, but with each Decimal as its exact number
    (the stdlib encoder cannot emit a number it did not format itself)."""
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a non-finite Decimal is not a JSON number")
        return str(value)
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            items.append(_encode_str(key) + ":" + _json_with_decimals(item))
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json_with_decimals(item) for item in value) + "]"
    return _encode_json_checked(value)  # None, bool, int, float: as json.dumps writes them


def _timestamp_bytes(timestamp_ms: int | None) -> bytes:
    if timestamp_ms is None:
        return str(now_ms()).encode("ascii")
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms < 0:
        raise ValueError("timestamp_ms must be a non-negative int of milliseconds")
    return str(timestamp_ms).encode("ascii")


def _headers(agent_id: str, timestamp: str, nonce: str, signature: str) -> dict[str, str]:
    return {
        "Content-Type": CONTENT_TYPE,
        "x-agentid": agent_id,
        "x-timestamp": timestamp,
        "x-nonce": nonce,
        "x-signature": signature,
    }


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
    if not isinstance(credentials, Credentials):
        raise TypeError("credentials must be vpseal.Credentials")
    plaintext = payload_bytes(payload)
    timestamp = _timestamp_bytes(timestamp_ms)
    nonce_hex = None
    if nonce is not None:
        if not isinstance(nonce, str) or len(nonce) != 32 or not _HEX.issuperset(nonce):
            raise ValueError("nonce must be 32 lowercase hex characters")
        nonce_hex = nonce.encode("ascii")
    if iv is not None and (not isinstance(iv, bytes) or len(iv) != 12):
        raise ValueError("iv must be 12 bytes")
    body, nonce_text, signature = credentials._engine.seal(
        credentials._code, credentials._agent, timestamp, nonce_hex, iv, plaintext
    )
    return SealedRequest(
        _headers(credentials.agent_id, timestamp.decode("ascii"), nonce_text, signature), body
    )


def seal_many(
    credentials: Credentials, payloads: Iterable[Mapping[str, Any] | bytes]
) -> list[SealedRequest]:
    """seal_request for many payloads in one engine call (the GIL is released while it runs)."""
    if not isinstance(credentials, Credentials):
        raise TypeError("credentials must be vpseal.Credentials")
    plaintexts = [payload_bytes(p) for p in payloads]
    timestamp = _timestamp_bytes(None)
    ts_text = timestamp.decode("ascii")
    agent = credentials.agent_id
    sealed = credentials._engine.seal_many(
        credentials._code, credentials._agent, timestamp, plaintexts
    )
    return [
        SealedRequest(_headers(agent, ts_text, nonce, signature), body)
        for body, nonce, signature in sealed
    ]


# ---------------------------------------------------------------- opening


class _Parsed:
    """Validated headers of one request, ready for the engine."""

    __slots__ = ("agent_id", "body", "credentials", "nonce", "signature", "timestamp")

    def __init__(
        self,
        credentials: Credentials,
        agent_id: str,
        timestamp: str,
        nonce: str,
        signature: str,
        body: bytes,
    ) -> None:
        self.credentials = credentials
        self.agent_id = agent_id
        self.timestamp = timestamp
        self.nonce = nonce
        self.signature = signature
        self.body = body

    def engine_args(self) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        return (
            self.credentials._agent,
            self.timestamp.encode("ascii"),
            self.nonce.encode("ascii"),
            self.signature.encode("ascii"),
            self.body,
        )


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = candidate
                break
        else:
            raise RequestFormatError(f"missing header {name}")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        raise RequestFormatError(f"header {name} must be a string")
    return value.strip()


def _parse(
    keys: Credentials | Mapping[str, Credentials],
    headers: Mapping[str, str],
    body: bytes,
    max_body: int,
) -> _Parsed:
    if not isinstance(headers, Mapping):
        raise RequestFormatError("headers must be a mapping")
    agent_id = _header(headers, "x-agentid")
    timestamp = _header(headers, "x-timestamp")
    nonce = _header(headers, "x-nonce")
    signature = _header(headers, "x-signature")
    if isinstance(keys, Credentials):
        credentials = keys if keys.agent_id == agent_id else None
    else:
        credentials = keys.get(agent_id)
    if credentials is None:
        raise RequestFormatError("unknown agent in x-agentid")
    if not 0 < len(timestamp) <= 16 or not _DIGITS.issuperset(timestamp):
        raise RequestFormatError("x-timestamp must be Unix time in milliseconds (digits)")
    if len(nonce) != 32 or not _HEX.issuperset(nonce):
        raise RequestFormatError("x-nonce must be 32 lowercase hex characters")
    if not signature.isascii():
        raise SignatureError("signature verification failed")
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    elif not isinstance(body, bytes):
        raise RequestFormatError("body must be bytes")
    if len(body) > max_body:
        raise RequestFormatError(f"body larger than {max_body} bytes")
    return _Parsed(credentials, agent_id, timestamp, nonce, signature, body)


def _parse_payload(plaintext: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(plaintext, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise RequestFormatError("decrypted payload is not JSON") from None
    if not isinstance(payload, dict):
        raise RequestFormatError("decrypted payload is not a JSON object")
    return payload


def _guard(parsed: _Parsed, guard: ReplayGuard | None, now: int | None) -> None:
    if guard is not None:
        guard.check(
            parsed.agent_id,
            int(parsed.timestamp),
            parsed.nonce,
            message_id=parsed.body[_MESSAGE_ID].decode("latin-1"),
            now=now,
        )


def _finish(
    parsed: _Parsed,
    status: int,
    plaintext: bytes | None,
    guard: ReplayGuard | None,
    now: int | None,
) -> OpenedRequest:
    """Turn an engine verdict into a result, in SPEC order: signature, replay, decryption."""
    if status == OPEN_NOT_CANONICAL:
        return _open_slow(parsed, guard, now)
    if status == OPEN_BAD_SIGNATURE:
        raise SignatureError("signature verification failed")
    _guard(parsed, guard, now)
    if status in (OPEN_BAD_WIRE, OPEN_BAD_TAG) or plaintext is None:
        raise DecryptionError("cipherText cannot be decrypted with this agent's key")
    assert status == OPEN_OK
    return OpenedRequest(
        parsed.agent_id, int(parsed.timestamp), parsed.nonce, _parse_payload(plaintext)
    )


def _open_slow(parsed: _Parsed, guard: ReplayGuard | None, now: int | None) -> OpenedRequest:
    """Any JSON spelling of {"cipherText": "..."}: parse, verify, guard, decrypt."""
    try:
        outer = json.loads(parsed.body)
    except (ValueError, RecursionError):
        raise RequestFormatError('body is not JSON {"cipherText": "..."}') from None
    if not isinstance(outer, dict) or set(outer) != {"cipherText"}:
        raise RequestFormatError('body must be exactly {"cipherText": "..."}')
    wire = outer["cipherText"]
    if not isinstance(wire, str):
        raise RequestFormatError("cipherText must be a string")
    credentials = parsed.credentials
    signed = parsed.body if credentials.scheme == "transfer" else wire
    if not verify_signature(
        parsed.agent_id, parsed.timestamp, parsed.nonce, signed, parsed.signature,
        credentials.scheme,
    ):  # fmt: skip
        raise SignatureError("signature verification failed")
    if guard is not None:
        guard.check(
            parsed.agent_id, int(parsed.timestamp), parsed.nonce, message_id=wire[:40], now=now
        )
    try:
        iv, tag, ciphertext = decode_wire(wire)
        plaintext = credentials._engine.decrypt(iv, ciphertext + tag, b"")
    except (WireFormatError, InvalidTag):
        plaintext = None
    if plaintext is None:
        raise DecryptionError("cipherText cannot be decrypted with this agent's key")
    return OpenedRequest(
        parsed.agent_id, int(parsed.timestamp), parsed.nonce, _parse_payload(plaintext)
    )


def open_request(
    keys: Credentials | Mapping[str, Credentials],
    headers: Mapping[str, str],
    body: bytes,
    *,
    guard: ReplayGuard | None = None,
    now_ms: int | None = None,
    max_body: int = MAX_BODY_BYTES,
) -> OpenedRequest:
    """Verify, replay-check, decrypt and parse one request, or raise a RequestError subclass
    (SignatureError/ReplayError 83, DecryptionError 84, RequestFormatError 11)."""
    parsed = _parse(keys, headers, body, max_body)
    credentials = parsed.credentials
    status, plaintext = credentials._engine.open(credentials._code, *parsed.engine_args())
    return _finish(parsed, status, plaintext, guard, now_ms)


def open_many(
    keys: Credentials | Mapping[str, Credentials],
    requests: Iterable[SealedRequest | tuple[Mapping[str, str], bytes]],
    *,
    guard: ReplayGuard | None = None,
    now_ms: int | None = None,
    max_body: int = MAX_BODY_BYTES,
) -> list[OpenedRequest | VPSealError]:
    """open_request for many requests, one engine call per agent; each slot holds the opened
    request or the error that request alone raised."""
    results: list[OpenedRequest | VPSealError | None] = []
    groups: dict[int, tuple[Credentials, list[tuple[int, _Parsed]]]] = {}
    for index, request in enumerate(requests):
        try:
            if isinstance(request, SealedRequest):
                headers, body = request.headers, request.body
            else:
                headers, body = request
            parsed = _parse(keys, headers, body, max_body)
        except VPSealError as exc:
            results.append(exc)
            continue
        except (TypeError, ValueError):
            results.append(RequestFormatError("request must be (headers, body) or SealedRequest"))
            continue
        results.append(None)
        creds = parsed.credentials
        groups.setdefault(id(creds), (creds, []))[1].append((index, parsed))
    for creds, members in groups.values():
        verdicts = creds._engine.open_many(creds._code, [p.engine_args() for _, p in members])
        for (index, parsed), (status, plaintext) in zip(members, verdicts):
            try:
                results[index] = _finish(parsed, status, plaintext, guard, now_ms)
            except VPSealError as exc:
                results[index] = exc
    return results  # type: ignore[return-value]  # every None was replaced above


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
