"""Request signatures (SPEC.md section 4) and API KEY parsing (SPEC.md section 1)."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import vpseal
from vpseal import ConfigError, parse_api_key, sign, verify_signature

HEX64 = re.compile(r"[0-9a-f]{64}")
HEX32 = re.compile(r"[0-9a-f]{32}")

# The seeds' request headers (both seed pages show the same ones).
SEED_AGENT = "integratorNBTest04"
SEED_TS = "1769746894501"
SEED_NONCE = "56ffd5ecd8a3a4457863a0bd7c298fb2"
SEED_SIGNATURE = "904e97bee2589b93e9747eed0346c68b23d8ff8b568dabaf4b94a5e89093df67"
SEED_WIRE = (
    "G0ZMDELeJwx+7JcIfIFOLJjkSzANPu6krGM2uw==" + "bDUB6MvL" + "A" * 120 + "HjdFzQ=="
)  # the docs' example layout; the real ciphertext is elided in the docs
SEED_BODY = '{"cipherText":"' + SEED_WIRE + '"}'

HEX_DIGITS = "0123456789abcdef"


def transfer_digest(agent: str, ts: str | int, nonce: str, body: bytes | str) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return hashlib.sha256(f"{agent}{ts}{nonce}".encode() + raw).hexdigest()


def pipe_digest(agent: str, ts: str | int, nonce: str, wire: str) -> str:
    return hashlib.sha256(f"{agent}|{ts}|{nonce}|{wire}".encode()).hexdigest()


agents = st.text(min_size=1, max_size=40)
timestamps = st.one_of(st.integers(0, 10**13 - 1), st.integers(0, 10**13 - 1).map(str))
nonces = st.binary(min_size=16, max_size=16).map(bytes.hex)
bodies = st.one_of(st.binary(max_size=500), st.text(max_size=200))


# -- sign ----------------------------------------------------------------------------------------


def test_seed_headers_structure() -> None:
    assert re.fullmatch(r"\d{13}", SEED_TS)
    assert HEX32.fullmatch(SEED_NONCE)
    assert HEX64.fullmatch(SEED_SIGNATURE)
    for scheme, data in (("transfer", SEED_BODY), ("pipe", SEED_WIRE)):
        sig = sign(SEED_AGENT, SEED_TS, SEED_NONCE, data, scheme)
        assert HEX64.fullmatch(sig), sig
    assert sign(SEED_AGENT, SEED_TS, SEED_NONCE, SEED_BODY) == transfer_digest(
        SEED_AGENT, SEED_TS, SEED_NONCE, SEED_BODY
    )
    assert sign(SEED_AGENT, SEED_TS, SEED_NONCE, SEED_WIRE, "pipe") == pipe_digest(
        SEED_AGENT, SEED_TS, SEED_NONCE, SEED_WIRE
    )


def test_known_values() -> None:
    """Fixed inputs against digests spelled out in full."""
    assert sign("a", "1", "n", "b") == hashlib.sha256(b"a1nb").hexdigest()
    assert sign("a", "1", "n", "b", "pipe") == hashlib.sha256(b"a|1|n|b").hexdigest()
    assert sign("", 0, "", b"") == (
        "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9"
    )


def test_default_scheme_is_transfer() -> None:
    assert sign(SEED_AGENT, SEED_TS, SEED_NONCE, SEED_BODY) == sign(
        SEED_AGENT, SEED_TS, SEED_NONCE, SEED_BODY, "transfer"
    )
    assert sign(SEED_AGENT, SEED_TS, SEED_NONCE, SEED_WIRE) != sign(
        SEED_AGENT, SEED_TS, SEED_NONCE, SEED_WIRE, "pipe"
    )


@given(agent=agents, ts=timestamps, nonce=nonces, body=bodies)
def test_transfer_scheme(agent: str, ts: str | int, nonce: str, body: bytes | str) -> None:
    sig = sign(agent, ts, nonce, body, "transfer")
    assert sig == transfer_digest(agent, ts, nonce, body)
    assert HEX64.fullmatch(sig)


@given(agent=agents, ts=timestamps, nonce=nonces, wire=st.text(max_size=300))
def test_pipe_scheme(agent: str, ts: str | int, nonce: str, wire: str) -> None:
    sig = sign(agent, ts, nonce, wire, "pipe")
    assert sig == pipe_digest(agent, ts, nonce, wire)
    assert HEX64.fullmatch(sig)


@given(agent=agents, ts=st.integers(0, 10**13), nonce=nonces, body=bodies)
def test_int_and_str_timestamps_equal(agent: str, ts: int, nonce: str, body: bytes | str) -> None:
    for scheme in ("transfer", "pipe"):
        assert sign(agent, ts, nonce, body, scheme) == sign(agent, str(ts), nonce, body, scheme)


def test_body_bytes_and_str_equal() -> None:
    assert sign("agent", 1, SEED_NONCE, SEED_BODY) == sign(
        "agent", 1, SEED_NONCE, SEED_BODY.encode()
    )
    assert sign("agent", 1, SEED_NONCE, "é") == transfer_digest("agent", 1, SEED_NONCE, "é")


@pytest.mark.parametrize("ts", [1.5, None, True, b"1769746894501", [1]], ids=repr)
def test_bad_timestamp_type(ts: object) -> None:
    with pytest.raises(TypeError, match="timestamp"):
        sign(SEED_AGENT, ts, SEED_NONCE, SEED_BODY)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "scheme", ["", "Transfer", "PIPE", "hmac", " pipe", None, 0, 1, ["pipe"]], ids=repr
)
def test_unknown_scheme(scheme: object) -> None:
    with pytest.raises(ValueError, match="scheme"):
        sign(SEED_AGENT, SEED_TS, SEED_NONCE, SEED_BODY, scheme)  # type: ignore[arg-type]
    sig = sign(SEED_AGENT, SEED_TS, SEED_NONCE, SEED_BODY)
    with pytest.raises(ValueError, match="scheme"):
        verify_signature(SEED_AGENT, SEED_TS, SEED_NONCE, SEED_BODY, sig, scheme)  # type: ignore[arg-type]


# -- verify_signature ----------------------------------------------------------------------------

schemes = st.sampled_from(["transfer", "pipe"])


@given(agent=agents, ts=timestamps, nonce=nonces, body=bodies, scheme=schemes, data=st.data())
def test_verify_accepts_right_and_rejects_any_single_char_change(
    agent: str,
    ts: str | int,
    nonce: str,
    body: bytes | str,
    scheme: str,
    data: st.DataObject,
) -> None:
    sig = sign(agent, ts, nonce, body, scheme)  # type: ignore[arg-type]
    assert verify_signature(agent, ts, nonce, body, sig, scheme) is True  # type: ignore[arg-type]
    assert verify_signature(agent, ts, nonce, body, sig.upper(), scheme) is True  # type: ignore[arg-type]

    pos = data.draw(st.integers(0, 63), label="pos")
    new = data.draw(st.sampled_from(HEX_DIGITS.replace(sig[pos], "")), label="digit")
    if data.draw(st.booleans(), label="upper"):
        new = new.upper()
    wrong = sig[:pos] + new + sig[pos + 1 :]
    assert verify_signature(agent, ts, nonce, body, wrong, scheme) is False  # type: ignore[arg-type]


@given(agent=agents, ts=st.integers(0, 10**13), nonce=nonces, body=bodies, scheme=schemes)
def test_verify_rejects_changed_inputs(
    agent: str, ts: int, nonce: str, body: bytes | str, scheme: str
) -> None:
    sig = sign(agent, ts, nonce, body, scheme)  # type: ignore[arg-type]
    other_body = body + (b"x" if isinstance(body, bytes) else "x")
    other_nonce = nonce[:-1] + ("0" if nonce[-1] != "0" else "1")
    for args in (
        (agent + "x", ts, nonce, body),
        (agent, ts + 1, nonce, body),
        (agent, ts, other_nonce, body),
        (agent, ts, nonce, other_body),
    ):
        assert verify_signature(*args, sig, scheme) is False  # type: ignore[arg-type]
    other_scheme = "pipe" if scheme == "transfer" else "transfer"
    assert verify_signature(agent, ts, nonce, body, sig, other_scheme) is False  # type: ignore[arg-type]


def test_pipe_separators_matter() -> None:
    """("a1", 23) and ("a", 123) collide under transfer (plain concatenation), not under pipe."""
    assert sign("a1", 23, SEED_NONCE, "d") == sign("a", 123, SEED_NONCE, "d")
    assert sign("a1", 23, SEED_NONCE, "d", "pipe") != sign("a", 123, SEED_NONCE, "d", "pipe")


_SIG = sign(SEED_AGENT, SEED_TS, SEED_NONCE, SEED_BODY)
BAD_SIGNATURES = {
    "empty": "",
    "63-chars": _SIG[:-1],
    "65-chars": _SIG + "0",
    "128-chars": _SIG + _SIG,
    "32-chars": _SIG[:32],
    "trailing-space": _SIG + " ",
    "trailing-newline": _SIG + "\n",
    "leading-space-63": " " + _SIG[1:],
    "non-ascii-e-acute": _SIG[:-1] + "é",
    "fullwidth-digits": _SIG.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"}),
    "fullwidth-letter": _SIG.translate({ord("a"): 0xFF21, ord("b"): 0xFF22}),
    "kelvin-sign": _SIG[:-1] + "\u212a",
    "non-hex-g": _SIG[:-1] + "g",
    "0x-prefix": "0x" + _SIG[:-2],
    "bytes": _SIG.encode(),
    "None": None,
    "int": int(_SIG, 16),
}


@pytest.mark.parametrize("value", BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
def test_verify_bad_signature_is_false_not_exception(value: object) -> None:
    assert verify_signature(SEED_AGENT, SEED_TS, SEED_NONCE, SEED_BODY, _SIG) is True
    result = verify_signature(SEED_AGENT, SEED_TS, SEED_NONCE, SEED_BODY, value)  # type: ignore[arg-type]
    assert result is False


# -- parse_api_key ---------------------------------------------------------------------------

API_KEY = "7c814e2c98e44b300d3eeea4ac6336bb" + "0123456789abcdeffedcba9876543210"
API_KEY_BYTES = bytes.fromhex(API_KEY)


@pytest.mark.parametrize(
    "text",
    [
        API_KEY,
        API_KEY.upper(),
        API_KEY[:32] + API_KEY[32:].upper(),
        "  " + API_KEY,
        API_KEY + "   ",
        "\t" + API_KEY + "\n",
        " \r\n" + API_KEY.upper() + " \t",
    ],
    ids=["lower", "upper", "mixed", "leading", "trailing", "tab-newline", "crlf-upper"],
)
def test_parse_api_key_valid(text: str) -> None:
    key = parse_api_key(text)
    assert type(key) is bytes
    assert key == API_KEY_BYTES
    assert len(key) == 32


@given(key=st.binary(min_size=32, max_size=32), data=st.data())
def test_parse_api_key_any_key(key: bytes, data: st.DataObject) -> None:
    text = "".join(c.upper() if data.draw(st.booleans(), label="upper") else c for c in key.hex())
    assert parse_api_key(text) == key


BAD_KEYS = {
    "empty": "",
    "spaces-only": " " * 64,
    "62": API_KEY[:62],
    "63": API_KEY[:63],
    "65": API_KEY + "a",
    "66": API_KEY + "ab",
    "128": API_KEY + API_KEY,
    "32-bytes-as-32-hex": API_KEY[:32],
    "non-hex-g": API_KEY[:-1] + "g",
    "non-hex-z-upper": "Z" + API_KEY[1:],
    "0x-prefix": "0x" + API_KEY[:62],
    "0x-prefix-66": "0x" + API_KEY,
    "inner-space": API_KEY[:32] + " " + API_KEY[32:],
    "inner-space-64": API_KEY[:31] + " " + API_KEY[32:],
    "inner-newline": API_KEY[:32] + "\n" + API_KEY[33:],
    "colons": ":".join(API_KEY[i : i + 2] for i in range(0, 64, 2)),
    "base64-of-key": "fIFOLJjkSzANPu6krGM2uwEjRWeJq83v/ty6mHZUMhA=",
    "fullwidth-digits": API_KEY.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"}),
    "non-ascii": API_KEY[:-1] + "é",
    "nul": API_KEY[:-1] + "\x00",
}


def _leaks(key_text: str, message: str) -> bool:
    """True when message contains any 8-character run of the key (shorter keys: unchecked,
    their text could coincide with ordinary words and numbers of a message)."""
    core = key_text.strip()
    return any(core[i : i + 8] in message for i in range(len(core) - 7))


def _messages(exc: BaseException) -> list[str]:
    out = []
    seen: BaseException | None = exc
    while seen is not None:
        out += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return out


@pytest.mark.parametrize("text", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_parse_api_key_invalid(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_api_key(text)
    for message in _messages(info.value):
        assert not _leaks(text, message), message


@pytest.mark.parametrize(
    "value",
    [API_KEY.encode(), bytearray(API_KEY.encode()), API_KEY_BYTES, None, 12345, [API_KEY]],
    ids=["bytes-hex", "bytearray-hex", "raw-32-bytes", "None", "int", "list"],
)
def test_parse_api_key_non_str(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_api_key(value)  # type: ignore[arg-type]
    for message in _messages(info.value):
        assert not _leaks(API_KEY, message), message
        assert not _leaks(API_KEY.upper(), message), message
        assert API_KEY_BYTES.hex() not in message.lower()
        assert repr(API_KEY_BYTES)[2:20] not in message


@given(key=st.binary(min_size=32, max_size=32), cut=st.integers(8, 63))
def test_parse_api_key_truncated_never_leaks(key: bytes, cut: int) -> None:
    text = key.hex()[:cut]
    assume(len(text.strip()) != 64)
    with pytest.raises(ConfigError) as info:
        parse_api_key(text)
    for message in _messages(info.value):
        assert not _leaks(text, message), message


def test_config_error_hierarchy() -> None:
    assert issubclass(ConfigError, vpseal.VPSealError)
    assert issubclass(ConfigError, ValueError)
