"""Whole requests: seal_request / open_request round trips on both schemes and both backends,
known answers computed independently, the slow (non byte-exact) body path, Credentials and
payload validation."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import types
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
from _envelope_helpers import (
    AGENT,
    AVAILABLE_BACKENDS,
    BACKENDS,
    KEY,
    KEY_HEX,
    OTHER_AGENT,
    OTHER_KEY_HEX,
    PREFIX,
    SCHEMES,
    SEED_PAYLOAD,
    SUFFIX,
    WINDOW_ONLY,
    assert_error,
    assert_no_leak,
    big_payloads,
    compact_json,
    creds,
    native_available,
    now_ms,
    outcome,
    payloads,
    ref_seal,
    ref_signature,
    require_backend,
    resign,
    wire_of,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import vpseal

# None: the process-wide engine, which VPSEAL_BACKEND picks (CI runs the suite once per value)
backends = st.sampled_from((*AVAILABLE_BACKENDS, None))
schemes = st.sampled_from(SCHEMES)


@pytest.fixture(scope="module", autouse=True)
def _fallback_always_loads() -> None:
    """Loading the fallback never skips: pycryptodome is a hard dependency."""
    from vpseal import _fallback  # noqa: F401


def _roundtrip(
    seal_backend: str | None, open_backend: str | None, scheme: str, payload: Any
) -> None:
    sealer = creds(seal_backend, scheme)
    opener = creds(open_backend, scheme)
    sealed = vpseal.seal_request(sealer, payload)
    opened = vpseal.open_request(opener, sealed.headers, sealed.body, guard=WINDOW_ONLY)
    assert opened.payload == payload
    assert opened.agent_id == AGENT
    assert opened.nonce == sealed.headers["x-nonce"]
    assert opened.timestamp_ms == int(sealed.headers["x-timestamp"])


# -- round trips -------------------------------------------------------------------------------


def test_process_wide_engine_follows_env(scheme: str) -> None:
    wanted = os.environ.get("VPSEAL_BACKEND", "").strip().lower()
    if wanted:
        assert vpseal.backend() == wanted
    else:
        assert vpseal.backend() in BACKENDS
    if vpseal.backend() == "fallback":
        assert vpseal.openssl_version() is None
    default = vpseal.Credentials(AGENT, KEY_HEX, scheme)
    for name in BACKENDS:
        if name == "native" and not native_available():
            continue
        explicit = creds(name, scheme)
        for sealer, opener in ((default, explicit), (explicit, default)):
            sealed = vpseal.seal_request(sealer, SEED_PAYLOAD, iv=bytes(12), nonce="0" * 32)
            opened = vpseal.open_request(opener, sealed.headers, sealed.body, guard=WINDOW_ONLY)
            assert opened.payload == SEED_PAYLOAD
        fixed = {"iv": bytes(12), "nonce": "0" * 32, "timestamp_ms": 1}
        a = vpseal.seal_request(default, SEED_PAYLOAD, **fixed)
        b = vpseal.seal_request(explicit, SEED_PAYLOAD, **fixed)
        assert (a.headers, a.body) == (b.headers, b.body)


@settings(max_examples=200)
@given(payload=payloads, seal_backend=backends, open_backend=backends, scheme=schemes)
def test_roundtrip_any_payload_any_backends(
    payload: dict[str, Any], seal_backend: str, open_backend: str, scheme: str
) -> None:
    """open(seal(x)).payload == x, including sealing on one engine and opening on the other."""
    _roundtrip(seal_backend, open_backend, scheme, payload)


@settings(max_examples=20)
@given(payload=big_payloads, seal_backend=backends, open_backend=backends, scheme=schemes)
def test_roundtrip_large_strings(
    payload: dict[str, Any], seal_backend: str, open_backend: str, scheme: str
) -> None:
    _roundtrip(seal_backend, open_backend, scheme, payload)


@pytest.mark.parametrize("seal_backend", BACKENDS)
@pytest.mark.parametrize("open_backend", BACKENDS)
def test_cross_backend_fixed_payloads(seal_backend: str, open_backend: str, scheme: str) -> None:
    cases: list[dict[str, Any]] = [
        {},
        SEED_PAYLOAD,
        {"amount": Decimal("2323.582"), "balance": 0},
        {"amount": Decimal("-0.000001"), "tiny": Decimal("1E-7"), "big": Decimal("1E+30")},
        {"emoji": "\U0001f4b0\U0001f600", "ctl": "\x00\x01\x1f\x7f", "ls": "\u2028\u2029"},
        {"quote\"back\\slash": ["\"", "\\", "/", "</script>"], "nested": {"a": [None, True]}},
        {"k": "x" * 100_000},  # above the fallback's long-message threshold
        {"k": "é" * 3000},  # around it, with multi-byte UTF-8
    ]
    for payload in cases:
        _roundtrip(seal_backend, open_backend, scheme, payload)


def test_amounts_come_back_as_decimal(backend: str) -> None:
    c = creds(backend)
    sealed = vpseal.seal_request(c, b'{"amount":2323.582,"balance":0,"neg":-1.5e3,"n":[0.1]}')
    payload = vpseal.open_request(c, sealed.headers, sealed.body, guard=WINDOW_ONLY).payload
    assert payload == {
        "amount": Decimal("2323.582"),
        "balance": 0,
        "neg": Decimal("-1.5e3"),
        "n": [Decimal("0.1")],
    }
    assert type(payload["amount"]) is Decimal
    assert type(payload["n"][0]) is Decimal
    assert type(payload["balance"]) is int


def test_decimal_written_exactly(backend: str) -> None:
    """A Decimal is written as its exact digits (never through a float)."""
    c = creds(backend)
    values = ["0.1", "2323.582", "123456789012345678901234567890.123456", "-0.000001", "1E+2"]
    payload = {f"v{i}": Decimal(v) for i, v in enumerate(values)}
    sealed = vpseal.seal_request(c, payload, iv=bytes(12), nonce="0" * 32, timestamp_ms=1)
    text = ",".join(f'"v{i}":{v}' for i, v in enumerate(values))
    plaintext = ("{" + text + "}").encode()
    body, _ = ref_seal(KEY, AGENT, "transfer", plaintext, "1", "0" * 32, bytes(12))
    assert sealed.body == body
    opened = vpseal.open_request(
        c, sealed.headers, sealed.body, guard=WINDOW_ONLY, now_ms=1
    ).payload
    for key, value in payload.items():
        assert opened[key] == value and str(opened[key]) == str(value)


def test_bytes_payload_sent_as_is(backend: str, scheme: str) -> None:
    raw = b'{ "pretty" : [1, 2.50, "x"] }\n'
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, raw, iv=bytes(12), nonce="a" * 32, timestamp_ms=5)
    assert sealed.body == ref_seal(KEY, AGENT, scheme, raw, "5", "a" * 32, bytes(12))[0]
    opened = vpseal.open_request(c, sealed.headers, sealed.body, guard=WINDOW_ONLY, now_ms=5)
    assert opened.payload == {
        "pretty": [1, Decimal("2.50"), "x"]
    }


def test_non_ascii_kept_as_utf8(backend: str) -> None:
    payload = {"name": "Zoë 🎰", "city": "東京"}
    c = creds(backend)
    sealed = vpseal.seal_request(c, payload, iv=bytes(12), nonce="1" * 32, timestamp_ms=7)
    plain = aesgcm_open(sealed.body)
    assert plain == '{"name":"Zoë 🎰","city":"東京"}'.encode()
    assert b"\\u" not in plain


def aesgcm_open(body: bytes, key: bytes = KEY) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    wire = wire_of(body)
    iv = base64.b64decode(wire[:16], validate=True)
    tag = base64.b64decode(wire[16:40], validate=True)
    ct = base64.b64decode(wire[40:], validate=True)
    return AESGCM(key).decrypt(iv, ct + tag, None)


# -- what seal_request produces ---------------------------------------------------------------


def test_headers_and_defaults(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    before = now_ms()
    sealed = vpseal.seal_request(c, SEED_PAYLOAD)
    after = now_ms()
    h = sealed.headers
    assert set(h) == {"Content-Type", "x-agentid", "x-timestamp", "x-nonce", "x-signature"}
    assert h["Content-Type"] == "application/json"
    assert h["x-agentid"] == AGENT
    assert re.fullmatch(r"[0-9]{13}", h["x-timestamp"])
    assert before <= int(h["x-timestamp"]) <= after
    assert re.fullmatch(r"[0-9a-f]{32}", h["x-nonce"])
    assert re.fullmatch(r"[0-9a-f]{64}", h["x-signature"])
    assert isinstance(sealed.body, bytes)
    assert sealed.body.startswith(PREFIX) and sealed.body.endswith(SUFFIX)
    # the body is exactly what was signed
    assert h["x-signature"] == ref_signature(
        AGENT, h["x-timestamp"], h["x-nonce"], sealed.body, scheme
    )
    assert json.loads(sealed.body) == {"cipherText": wire_of(sealed.body)}
    assert aesgcm_open(sealed.body) == compact_json(SEED_PAYLOAD)


def test_fresh_nonce_and_iv_every_time(backend: str) -> None:
    c = creds(backend)
    sealed = [vpseal.seal_request(c, SEED_PAYLOAD) for _ in range(200)]
    assert len({s.headers["x-nonce"] for s in sealed}) == 200
    assert len({wire_of(s.body)[:16] for s in sealed}) == 200


def test_only_iv_fixed_still_draws_nonce_and_clock(backend: str) -> None:
    c = creds(backend)
    a = vpseal.seal_request(c, SEED_PAYLOAD, iv=bytes(12))
    b = vpseal.seal_request(c, SEED_PAYLOAD, iv=bytes(12))
    assert a.body == b.body  # same key, IV, plaintext
    assert a.headers["x-nonce"] != b.headers["x-nonce"]
    assert abs(int(a.headers["x-timestamp"]) - now_ms()) < 60_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timestamp_ms": -1},
        {"timestamp_ms": 10**16},
        {"timestamp_ms": "1737000000000"},
        {"timestamp_ms": True},
        {"nonce": "A" * 32},
        {"nonce": "0" * 31},
        {"nonce": "g" * 32},
        {"iv": bytes(11)},
        {"iv": bytes(13)},
    ],
)
def test_bad_fixed_values_refused(backend: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        vpseal.seal_request(creds(backend), SEED_PAYLOAD, **kwargs)


# -- known answers -----------------------------------------------------------------------------

KAT_CASES = [
    (SEED_PAYLOAD, b'{"username":"player001","transId":"CASHOUT-20250129-001"}'),
    ({"amount": Decimal("2323.582"), "balance": 0}, b'{"amount":2323.582,"balance":0}'),
    ({"name": "Zoë", "x": [1, None, True]}, '{"name":"Zoë","x":[1,null,true]}'.encode()),
]


@pytest.mark.parametrize(("payload", "plaintext"), KAT_CASES)
def test_known_answer(backend: str, scheme: str, payload: Any, plaintext: bytes) -> None:
    iv = bytes.fromhex("1b464c0c42de270c7eec9708")
    nonce = "56ffd5ecd8a3a4457863a0bd7c298fb2"
    ts = 1769746894501
    sealed = vpseal.seal_request(
        creds(backend, scheme), payload, timestamp_ms=ts, nonce=nonce, iv=iv
    )
    # Independent computation: AESGCM, base64, hashlib, by hand.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ct_tag = AESGCM(KEY).encrypt(iv, plaintext, None)
    wire = (
        base64.b64encode(iv) + base64.b64encode(ct_tag[-16:]) + base64.b64encode(ct_tag[:-16])
    ).decode()
    body = ('{"cipherText":"' + wire + '"}').encode()
    if scheme == "transfer":
        sig = hashlib.sha256(f"{AGENT}{ts}{nonce}".encode() + body).hexdigest()
    else:
        sig = hashlib.sha256(f"{AGENT}|{ts}|{nonce}|{wire}".encode()).hexdigest()
    assert sealed.body == body
    assert sealed.headers == {
        "Content-Type": "application/json",
        "x-agentid": AGENT,
        "x-timestamp": str(ts),
        "x-nonce": nonce,
        "x-signature": sig,
    }
    assert wire.startswith("G0ZMDELeJwx+7JcI")  # the docs' example IV
    opened = vpseal.open_request(
        creds(backend, scheme), sealed.headers, body, guard=WINDOW_ONLY, now_ms=ts
    )
    assert opened.payload == payload


@pytest.mark.parametrize("size", [1, 15, 16, 17, 5119, 5120, 5121, 65_537, 300_000])
def test_known_answer_sizes(backend: str, scheme: str, size: int) -> None:
    """Around block sizes, the fallback's short/long switch and the native 3072-byte chunks."""
    plaintext = bytes((i * 7 + 3) & 0xFF for i in range(size))
    iv, nonce = bytes(range(12)), "f" * 32
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, plaintext, timestamp_ms=123, nonce=nonce, iv=iv)
    body, sig = ref_seal(KEY, AGENT, scheme, plaintext, "123", nonce, iv)
    assert sealed.body == body
    assert sealed.headers["x-signature"] == sig


@settings(max_examples=60)
@given(
    key=st.binary(min_size=32, max_size=32),
    iv=st.binary(min_size=12, max_size=12),
    ts=st.integers(min_value=0, max_value=10**16 - 1),
    nonce=st.binary(min_size=16, max_size=16).map(bytes.hex),
    plaintext=st.binary(min_size=1, max_size=6000),
    agent=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20),
    backend=backends,
    scheme=schemes,
)
def test_known_answer_any_inputs(
    key: bytes,
    iv: bytes,
    ts: int,
    nonce: str,
    plaintext: bytes,
    agent: str,
    backend: str,
    scheme: str,
) -> None:
    c = creds(backend, scheme, agent=agent, key=key)
    sealed = vpseal.seal_request(c, plaintext, timestamp_ms=ts, nonce=nonce, iv=iv)
    body, sig = ref_seal(key, agent, scheme, plaintext, str(ts), nonce, iv)
    assert sealed.body == body
    assert sealed.headers["x-signature"] == sig
    assert sealed.headers["x-timestamp"] == str(ts)


def test_seed_payload_wire_structure(backend: str, scheme: str) -> None:
    """The seeds' cash-out payload gives a wire shaped like the docs' example:
    16-char IV, 24-char tag ending '==', then the ciphertext; a 100-byte plaintext (the docs'
    example size) gives exactly the docs' 176 characters."""
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, SEED_PAYLOAD)
    wire = wire_of(sealed.body)
    plaintext = compact_json(SEED_PAYLOAD)
    assert len(plaintext) == 57
    assert len(wire) == 16 + 24 + 4 * math.ceil(57 / 3) == 116
    assert re.fullmatch(r"[A-Za-z0-9+/]{16}[A-Za-z0-9+/]{22}==[A-Za-z0-9+/]{76}", wire)
    assert len(base64.b64decode(wire[:16])) == 12
    assert len(base64.b64decode(wire[16:40])) == 16
    assert len(base64.b64decode(wire[40:])) == 57
    # the docs' example: 100-byte ciphertext
    hundred = b'{"username":"player001","transId":"CASHOUT-20250129-001","pad":"%s"}' % (
        b"x" * 34
    )
    assert len(hundred) == 100
    docs_like = wire_of(vpseal.seal_request(c, hundred).body)
    assert len(docs_like) == 176
    assert docs_like[38:40] == "==" and docs_like.endswith("==")


# -- the slow path: valid JSON bodies that are not byte-exact --------------------------------


def _respellings(body: bytes) -> Iterator[tuple[str, bytes]]:
    wire = wire_of(body)
    yield "spaces", b'{ "cipherText" : "' + wire.encode() + b'" }'
    yield "newlines", b'\n{\n\t"cipherText":\r\n"' + wire.encode() + b'"\n}\n'
    yield "key escape", b'{"\\u0063ipherText":"' + wire.encode() + b'"}'
    yield "slash escapes", PREFIX + wire.replace("/", "\\/").encode() + SUFFIX
    yield "unicode escape in wire", PREFIX + b"\\u00" + b"%02x" % ord(wire[0]) + (
        wire[1:].encode() + SUFFIX
    )
    yield "plus escaped", PREFIX + wire.replace("+", "\\u002B").encode() + SUFFIX


def _sealed_with_slash(c: vpseal.Credentials) -> vpseal.SealedRequest:
    # b64 of 0xff bytes is "////": the IV part then certainly holds '/' characters.
    return vpseal.seal_request(c, SEED_PAYLOAD, iv=b"\xff" * 12)


def test_slow_path_opens_when_signed_over_exact_bytes(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    sealed = _sealed_with_slash(c)
    assert "/" in wire_of(sealed.body)
    for name, body in _respellings(sealed.body):
        assert body != sealed.body, name
        headers = resign(sealed.headers, body, scheme)
        if scheme == "pipe":  # only the wire string is signed: the original signature holds
            assert headers["x-signature"] == sealed.headers["x-signature"], name
        opened = vpseal.open_request(c, headers, body, guard=WINDOW_ONLY)
        assert opened.payload == SEED_PAYLOAD, name


def test_slow_path_transfer_signature_covers_exact_bytes(backend: str) -> None:
    c = creds(backend, "transfer")
    sealed = _sealed_with_slash(c)
    for name, body in _respellings(sealed.body):
        result = outcome(
            lambda body=body: vpseal.open_request(c, sealed.headers, body, guard=WINDOW_ONLY)
        )
        assert type(result) is vpseal.SignatureError, name
        assert_error(result, vpseal.SignatureError, 83)


def test_slow_path_pipe_respelling_keeps_signature(backend: str) -> None:
    c = creds(backend, "pipe")
    sealed = _sealed_with_slash(c)
    for name, body in _respellings(sealed.body):
        opened = vpseal.open_request(c, sealed.headers, body, guard=WINDOW_ONLY)
        assert opened.payload == SEED_PAYLOAD, name


@pytest.mark.parametrize(
    "shape",
    [
        '{{"cipherText":"{w}","extra":1}}',
        '{{"extra":"x","cipherText":"{w}"}}',
        '{{"cipherText":["{w}"]}}',
        '{{"cipherText":{{"w":"{w}"}}}}',
        '{{"cipherText":123}}',
        '{{"cipherText":null}}',
        '{{"cipherText":true}}',
        '["{w}"]',
        '[{{"cipherText":"{w}"}}]',
        '"{w}"',
        "{{}}",
        '{{"ciphertext":"{w}"}}',
        '{{"cipherText ":"{w}"}}',
        '{{"cipherText":"{w}"',
        '{{"cipherText":"{w}"}}}}',
        '{{"cipherText":"{w}"}} x',
    ],
)
def test_slow_path_wrong_shapes_are_format_errors(backend: str, scheme: str, shape: str) -> None:
    """Even signed correctly (transfer: over the bytes), these are code 11."""
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, SEED_PAYLOAD)
    body = shape.format(w=wire_of(sealed.body)).encode()
    headers = dict(sealed.headers)
    if scheme == "transfer":
        headers["x-signature"] = hashlib.sha256(
            (AGENT + headers["x-timestamp"] + headers["x-nonce"]).encode() + body
        ).hexdigest()
    result = outcome(lambda: vpseal.open_request(c, headers, body, guard=WINDOW_ONLY))
    assert_error(result, vpseal.RequestFormatError, 11)


def test_slow_path_body_as_str_and_bytearray(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, SEED_PAYLOAD)
    for body in (sealed.body.decode(), bytearray(sealed.body), memoryview(sealed.body)):
        opened = vpseal.open_request(c, sealed.headers, body, guard=WINDOW_ONLY)
        assert opened.payload == SEED_PAYLOAD


# -- Credentials --------------------------------------------------------------------------------


def test_credentials_repr_hides_key(backend: str, scheme: str) -> None:
    for key in (KEY_HEX, KEY_HEX.upper(), KEY, bytearray(KEY)):
        c = creds(backend, scheme, key=key)
        for text in (repr(c), str(c), f"{c}", f"{c!r}", repr([c]), repr(vpseal.Keyring([c]))):
            assert KEY_HEX not in text.lower()
            assert repr(KEY)[2:-1] not in text
            assert AGENT in text
        assert not hasattr(c, "__dict__")


def test_credentials_fields(backend: str) -> None:
    c = creds(backend, "pipe")
    assert c.agent_id == AGENT
    assert c.scheme == "pipe"
    assert vpseal.Credentials(AGENT, KEY_HEX).scheme == "transfer"


def test_credentials_key_forms_are_equivalent(backend: str) -> None:
    """64-hex (any case, surrounding whitespace stripped as the docs say) or the 32 bytes."""
    sealer = creds(backend, key=KEY)
    sealed = vpseal.seal_request(sealer, SEED_PAYLOAD)
    for key in (KEY_HEX, KEY_HEX.upper(), f"  {KEY_HEX}\n", bytearray(KEY)):
        other = creds(backend, key=key)
        opened = vpseal.open_request(other, sealed.headers, sealed.body, guard=WINDOW_ONLY)
        assert opened.payload == SEED_PAYLOAD


BAD_AGENT_IDS = ["", " ", "agent one", " agent", "agent\t", "agént", "agent\n", "a\x00b", "代理"]


@pytest.mark.parametrize("agent_id", [*BAD_AGENT_IDS, None, 5, b"a"])
def test_bad_agent_id_is_config_error(backend: str, agent_id: Any) -> None:
    require_backend(backend)
    with pytest.raises(vpseal.ConfigError) as info:
        vpseal.Credentials(agent_id, KEY_HEX, backend=backend)
    assert KEY_HEX not in str(info.value)


@pytest.mark.parametrize(
    "key",
    [
        KEY_HEX[:-1],
        KEY_HEX + "0",
        KEY_HEX[:-2],
        "zz" * 32,
        KEY_HEX[:-1] + "g",
        KEY_HEX[:32] + " " + KEY_HEX[33:],
        "0x" + KEY_HEX[2:],
        "",
        KEY[:31],
        KEY + b"\x00",
        b"",
        KEY_HEX.encode(),
        None,
        12345,
        memoryview(KEY),
    ],
    ids=lambda k: f"{type(k).__name__}{len(k) if hasattr(k, '__len__') else ''}",
)
def test_bad_api_key_is_config_error(backend: str, key: Any) -> None:
    require_backend(backend)
    with pytest.raises(vpseal.ConfigError) as info:
        vpseal.Credentials(AGENT, key, backend=backend)
    err = info.value
    assert isinstance(err, vpseal.VPSealError)
    for secret in (KEY_HEX, KEY_HEX[:40], KEY_HEX[-40:]):
        assert secret not in str(err).lower() and secret not in repr(err).lower()


@pytest.mark.parametrize("bad_scheme", ["Transfer", "PIPE", "pipe ", "", "hmac", None, 0, 1])
def test_bad_scheme_is_config_error(backend: str, bad_scheme: Any) -> None:
    require_backend(backend)
    with pytest.raises(vpseal.ConfigError):
        vpseal.Credentials(AGENT, KEY_HEX, bad_scheme, backend=backend)


def test_seal_needs_credentials() -> None:
    with pytest.raises(TypeError):
        vpseal.seal_request(KEY_HEX, SEED_PAYLOAD)  # type: ignore[arg-type]


# -- payload errors -----------------------------------------------------------------------------


def _cyclic() -> dict[str, Any]:
    d: dict[str, Any] = {"a": []}
    d["a"].append(d)
    return d


BAD_PAYLOADS = {
    "nan float": {"amount": float("nan")},
    "inf float": {"amount": float("inf")},
    "-inf float": {"amount": -math.inf},
    "nan decimal": {"amount": Decimal("NaN")},
    "inf decimal": {"amount": Decimal("-Infinity")},
    "snan decimal": {"amount": Decimal("sNaN")},
    "set": {"tags": {1, 2}},
    "frozenset": {"tags": frozenset()},
    "object": {"o": object()},
    "bytes value": {"b": b"raw"},
    "complex": {"c": 1j},
    "int key": {1: "a"},
    "int key beside str key": {1: "a", "1": "b"},
    "bool key": {True: "a"},
    "tuple key": {(1, 2): "a"},
    "int key with decimal": {1: Decimal("1.5")},
    "lone surrogate value": {"s": "\ud800"},
    "lone surrogate key": {"\udfff": 1},
    "lone surrogate nested": {"a": [{"b": "x\udc80y"}]},
    "surrogate with decimal": {"s": "\ud800", "d": Decimal("1.1")},
    "cycle": _cyclic(),
    "list payload": [1, 2],
    "str payload": '{"a":1}',
    "int payload": 5,
    "none payload": None,
    "empty bytes": b"",
    "bytearray payload": bytearray(b'{"a":1}'),
}


@pytest.mark.parametrize("name", sorted(BAD_PAYLOADS))
def test_payload_errors(backend: str, name: str) -> None:
    """Everything that is not a JSON object of str keys and JSON values is a PayloadError,
    never silently coerced (an int key would collide with a str key of the same digits)."""
    c = creds(backend)
    payload = BAD_PAYLOADS[name]
    secret = "SECRET-PLAYER-7f3a9c"
    if type(payload) is dict and name != "cycle":
        payload = {"username": secret, **payload, "transId": secret}
    with pytest.raises(vpseal.PayloadError) as info:
        vpseal.seal_request(c, payload)
    assert_no_leak(info.value, [KEY_HEX, secret])
    with pytest.raises(vpseal.PayloadError):
        vpseal.seal_many(c, [SEED_PAYLOAD, payload])


def test_deeply_nested_payload_is_payload_error(backend: str) -> None:
    c = creds(backend)
    deep: Any = "leaf"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(vpseal.PayloadError):
        vpseal.seal_request(c, {"d": deep})


class _ReadOnlyMapping(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@pytest.mark.parametrize(
    "wrap", [types.MappingProxyType, _ReadOnlyMapping], ids=["mappingproxy", "Mapping"]
)
def test_any_mapping_payload(backend: str, wrap: Any) -> None:
    """The issue: "payload is a mapping" - not only a dict."""
    c = creds(backend)
    payload = {"username": "player001", "amount": Decimal("1.25")}
    sealed = vpseal.seal_request(c, wrap(payload))
    assert vpseal.open_request(c, sealed.headers, sealed.body, guard=WINDOW_ONLY).payload == payload


def test_dict_subclass_payload(backend: str) -> None:
    from collections import OrderedDict

    c = creds(backend)
    payload = OrderedDict([("b", 1), ("a", Decimal("2.5"))])
    sealed = vpseal.seal_request(c, payload)
    assert aesgcm_open(sealed.body) == b'{"b":1,"a":2.5}'


def test_payload_error_hierarchy() -> None:
    assert issubclass(vpseal.PayloadError, vpseal.VPSealError)
    assert issubclass(vpseal.ConfigError, vpseal.VPSealError)
    for cls, code in (
        (vpseal.SignatureError, 83),
        (vpseal.ReplayError, 83),
        (vpseal.DecryptionError, 84),
        (vpseal.RequestFormatError, 11),
    ):
        assert issubclass(cls, vpseal.VPSealError)
        assert cls.api_code == code
        assert cls("x").api_code == code


def test_opened_request_repr_hides_payload(backend: str) -> None:
    c = creds(backend)
    sealed = vpseal.seal_request(c, {"username": "SECRET-PLAYER-7f3a"})
    opened = vpseal.open_request(c, sealed.headers, sealed.body, guard=WINDOW_ONLY)
    assert "SECRET-PLAYER-7f3a" not in repr(opened)
    assert "SECRET-PLAYER-7f3a" not in repr(sealed)
    assert opened == vpseal.open_request(c, sealed.headers, sealed.body, guard=WINDOW_ONLY)


def test_keyring_mapping(backend: str) -> None:
    a = creds(backend, "transfer")
    b = creds(backend, "pipe", agent=OTHER_AGENT, key=OTHER_KEY_HEX)
    ring = vpseal.Keyring([a, b])
    assert len(ring) == 2
    assert ring[AGENT] is a and ring[OTHER_AGENT] is b
    assert set(ring) == {AGENT, OTHER_AGENT}
    with pytest.raises(TypeError):
        ring.add("not credentials")  # type: ignore[arg-type]
    for c, payload in ((a, {"who": "a"}), (b, {"who": "b"})):
        sealed = vpseal.seal_request(c, payload)
        opened = vpseal.open_request(ring, sealed.headers, sealed.body, guard=WINDOW_ONLY)
        assert opened.payload == payload and opened.agent_id == c.agent_id
    # a plain dict of agent id -> Credentials works as a keyring too
    sealed = vpseal.seal_request(b, {"who": "b"})
    opened = vpseal.open_request({OTHER_AGENT: b}, sealed.headers, sealed.body, guard=WINDOW_ONLY)
    assert opened.payload == {"who": "b"}
