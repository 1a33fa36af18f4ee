"""Changed and malformed requests: each gets its exact error class and API code.

Expectations come from SPEC.md section 4 and the order open_request documents: header formats
(11), the signature (83; "transfer" covers agent + timestamp + nonce + the exact body bytes,
"pipe" covers agent | timestamp | nonce | the wire string only), the replay guard (83), the wire
and the GCM tag (84), then the plaintext (11 unless a JSON object). No secret needed to sign, so
an attacker can always re-sign: then only GCM stands in the way (84).
"""

from __future__ import annotations

from typing import Any

import pytest
from _envelope_helpers import (
    AGENT,
    AVAILABLE_BACKENDS,
    B64_ALPHABET,
    KEY_HEX,
    OK,
    OTHER_AGENT,
    OTHER_KEY_HEX,
    PREFIX,
    SCHEMES,
    SUFFIX,
    WINDOW_ONLY,
    assert_error,
    assert_no_leak,
    check,
    creds,
    expected_for_body,
    fresh_nonce,
    outcome,
    resign,
    wire_of,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import vpseal

SECRET_VALUE = "SECRET-PLAYER-7f3a9c"
PAYLOAD = {"username": SECRET_VALUE, "transId": "CASHOUT-20250129-001"}
SECRETS = [KEY_HEX, OTHER_KEY_HEX, SECRET_VALUE]
F11 = (vpseal.RequestFormatError, 11)
S83 = (vpseal.SignatureError, 83)
D84 = (vpseal.DecryptionError, 84)


def _open(keys: Any, headers: Any, body: Any, **kw: Any) -> Any:
    """open_request's result or error; the guard is WINDOW_ONLY unless kw names one (these
    requests are fresh, so the window never decides; the nonce check would, as most cases
    open one request many times)."""
    kw.setdefault("guard", WINDOW_ONLY)
    return outcome(lambda: vpseal.open_request(keys, headers, body, **kw))


# -- headers -----------------------------------------------------------------------------------


def _header_cases(h: dict[str, str]) -> list[tuple[str, str, Any]]:
    """(header, new value, expected) for one sealed request's headers."""
    ts, nonce, sig = h["x-timestamp"], h["x-nonce"], h["x-signature"]
    other_digit = str((int(ts[-1]) + 1) % 10)
    flipped_nonce = nonce[:-1] + ("0" if nonce[-1] != "0" else "1")
    flipped_sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    return [
        ("x-agentid", "someoneElse", F11),  # not this Credentials' agent
        ("x-agentid", AGENT + " ", F11),
        ("x-agentid", AGENT.upper(), F11),
        ("x-agentid", "", F11),
        ("x-timestamp", ts[:-1] + other_digit, S83),
        ("x-timestamp", str(int(ts) + 1), S83),
        ("x-timestamp", "0" + ts, S83),  # same number, other digits: still signed text
        ("x-timestamp", ts[:-1], S83),
        ("x-timestamp", "1", S83),
        ("x-timestamp", "9" * 16, S83),
        ("x-timestamp", "9" * 17, F11),
        ("x-timestamp", "", F11),
        ("x-timestamp", ts[:-1] + "a", F11),
        ("x-timestamp", "-" + ts, F11),
        ("x-timestamp", "+" + ts, F11),
        ("x-timestamp", ts + " ", F11),
        ("x-timestamp", " " + ts, F11),
        ("x-timestamp", ts[:5] + " " + ts[6:], F11),
        ("x-timestamp", ts + ".0", F11),
        ("x-timestamp", "\u0661" * 13, F11),  # Arabic-Indic digits are not ASCII digits
        ("x-nonce", flipped_nonce, S83),
        ("x-nonce", fresh_nonce(), S83),
        ("x-nonce", "0" * 32, S83),
        ("x-nonce", nonce.upper() if nonce.upper() != nonce else "A" * 32, F11),
        ("x-nonce", nonce[:-1], F11),
        ("x-nonce", nonce + "0", F11),
        ("x-nonce", "", F11),
        ("x-nonce", nonce[:-1] + "g", F11),
        ("x-nonce", nonce[:-1] + " ", F11),
        ("x-nonce", nonce[:-1] + "\u00e9", F11),
        ("x-signature", flipped_sig, S83),
        ("x-signature", "0" * 64, S83),
        ("x-signature", sig[:-1], S83),
        ("x-signature", sig + "0", S83),
        ("x-signature", "", S83),
        ("x-signature", sig[:-1] + "g", S83),
        ("x-signature", sig[:-1] + "\u00e9", S83),
        ("x-signature", " " + sig[1:], S83),
        ("x-signature", sig.upper(), OK),  # hex case is not part of the value
    ]


def test_every_header_change(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD)
    for name, value, expected in _header_cases(sealed.headers):
        headers = dict(sealed.headers)
        headers[name] = value
        result = _open(c, headers, sealed.body)
        try:
            check(result, expected, PAYLOAD, SECRETS)
        except AssertionError as exc:
            raise AssertionError(f"{name}={value!r}: {exc}") from None
    # nothing above consumed anything: the untouched request still opens
    assert vpseal.open_request(c, sealed.headers, sealed.body, guard=WINDOW_ONLY).payload == PAYLOAD


def test_agent_changed_to_another_known_agent(backend: str, scheme: str) -> None:
    """With a Keyring, another agent's id is found, and the signature (which covers the agent
    id) fails, whichever key that agent has."""
    c = creds(backend, scheme)
    same_key = creds(backend, scheme, agent=OTHER_AGENT)
    sealed = vpseal.seal_request(c, PAYLOAD)
    headers = dict(sealed.headers, **{"x-agentid": OTHER_AGENT})
    for other in (same_key, creds(backend, scheme, agent=OTHER_AGENT, key=OTHER_KEY_HEX)):
        ring = vpseal.Keyring([c, other])
        assert_error(_open(ring, headers, sealed.body), vpseal.SignatureError, 83, SECRETS)
        # re-signed for the other agent: the signature holds, the key does not (if different)
        resigned = resign(sealed.headers, sealed.body, scheme, x_agentid=OTHER_AGENT)
        result = _open(ring, resigned, sealed.body)
        if other is same_key:
            assert result.payload == PAYLOAD and result.agent_id == OTHER_AGENT
        else:
            assert_error(result, vpseal.DecryptionError, 84, SECRETS)


@settings(max_examples=150)
@given(
    data=st.data(),
    backend=st.sampled_from(AVAILABLE_BACKENDS),
    scheme=st.sampled_from(SCHEMES),
    header=st.sampled_from(["x-agentid", "x-timestamp", "x-nonce", "x-signature"]),
)
def test_random_header_change(data: st.DataObject, backend: str, scheme: str, header: str) -> None:
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD)
    old = sealed.headers[header]
    like = {"x-agentid": r"[ -~]{0,24}", "x-timestamp": r"[0-9]{1,20}"}
    like.update({"x-nonce": r"[0-9a-fA-F]{30,34}", "x-signature": r"[0-9a-f]{64}"})
    alphabet = st.one_of(st.text(max_size=70), st.from_regex(like[header], fullmatch=True))
    new = data.draw(alphabet)
    assume(new.lower() != old.lower() if header == "x-signature" else new != old)
    headers = dict(sealed.headers, **{header: new})
    if header == "x-agentid":
        expected = F11  # unknown to these Credentials
    elif header == "x-timestamp":
        ok = 0 < len(new) <= 16 and all("0" <= ch <= "9" for ch in new)
        expected = S83 if ok else F11
    elif header == "x-nonce":
        ok = len(new) == 32 and all(ch in "0123456789abcdef" for ch in new)
        expected = S83 if ok else F11
    else:
        expected = S83
    check(_open(c, headers, sealed.body), expected, None, SECRETS)


# -- body bytes ----------------------------------------------------------------------------------

REPLACEMENTS = [ord(ch) for ch in 'A/+="\\ {}:,'] + [0x00, 0x0A, 0x7F, 0x80, 0xC3, 0xFF]


def test_every_single_body_byte_change(backend: str, scheme: str) -> None:
    """Each position of the body, each of a range of replacement bytes."""
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD)
    body = sealed.body
    seen = set()
    for i in range(len(body)):
        for byte in REPLACEMENTS:
            if body[i] == byte:
                continue
            changed = body[:i] + bytes([byte]) + body[i + 1 :]
            expected = expected_for_body(scheme, body, changed)
            seen.add(expected if expected == OK else expected[0].__name__)
            try:
                check(_open(c, sealed.headers, changed), expected, PAYLOAD, SECRETS)
            except AssertionError as exc:
                raise AssertionError(f"byte {i} -> {byte:#x}: {exc}") from None
    assert {"SignatureError", "RequestFormatError"} <= seen


@settings(max_examples=250)
@given(
    data=st.data(),
    backend=st.sampled_from(AVAILABLE_BACKENDS),
    scheme=st.sampled_from(SCHEMES),
    guard=st.booleans(),
)
def test_random_body_byte_change(data: st.DataObject, backend: str, scheme: str, guard: bool):
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD)
    body = sealed.body
    i = data.draw(st.integers(0, len(body) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[i]))
    changed = body[:i] + bytes([byte]) + body[i + 1 :]
    kw = {"guard": vpseal.ReplayGuard() if guard else WINDOW_ONLY}
    check(_open(c, sealed.headers, changed, **kw), expected_for_body(scheme, body, changed))


@settings(max_examples=100)
@given(
    data=st.data(),
    backend=st.sampled_from(AVAILABLE_BACKENDS),
    scheme=st.sampled_from(SCHEMES),
)
def test_random_body_insert_or_delete(data: st.DataObject, backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD)
    body = sealed.body
    i = data.draw(st.integers(0, len(body)))
    if data.draw(st.booleans()) and i < len(body):
        changed = body[:i] + body[i + 1 :]
    else:
        changed = body[:i] + bytes([data.draw(st.sampled_from(b' \n\t"\\A=/{}'))]) + body[i:]
    check(_open(c, sealed.headers, changed), expected_for_body(scheme, body, changed), PAYLOAD)


def test_resigned_wire_byte_change_is_decryption_error(backend: str, scheme: str) -> None:
    """An attacker who changes any wire character (to another base64 character, so the body
    keeps its shape) and recomputes the signature gets 84: only GCM knows the key."""
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD)
    body = sealed.body
    start, end = len(PREFIX), len(body) - len(SUFFIX)
    for i in range(start, end):
        for byte in (b"A"[0], b"z"[0], b"/"[0], b"="[0], b"+"[0], b"7"[0]):
            if body[i] == byte:
                continue
            changed = body[:i] + bytes([byte]) + body[i + 1 :]
            headers = resign(sealed.headers, changed, scheme)
            result = _open(c, headers, changed, guard=vpseal.ReplayGuard())
            try:
                assert_error(result, vpseal.DecryptionError, 84, SECRETS)
            except AssertionError as exc:
                raise AssertionError(f"byte {i} -> {chr(byte)}: {exc}") from None


@settings(max_examples=100)
@given(
    data=st.data(),
    backend=st.sampled_from(AVAILABLE_BACKENDS),
    scheme=st.sampled_from(SCHEMES),
    payload=st.dictionaries(st.text(max_size=5), st.text(max_size=300), min_size=1, max_size=4),
)
def test_resigned_random_wire_change(
    data: st.DataObject, backend: str, scheme: str, payload: dict[str, str]
) -> None:
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, payload)
    wire = wire_of(sealed.body)
    i = data.draw(st.integers(0, len(wire) - 1))
    ch = data.draw(st.sampled_from(B64_ALPHABET + b"=").filter(lambda b: b != ord(wire[i])))
    new_wire = wire[:i] + chr(ch) + wire[i + 1 :]
    body = PREFIX + new_wire.encode() + SUFFIX
    headers = resign(sealed.headers, body, scheme, x_nonce=fresh_nonce())
    assert_error(_open(c, headers, body), vpseal.DecryptionError, 84)


def test_resigned_whole_parts_swapped(backend: str, scheme: str) -> None:
    """IV, tag or ciphertext taken from another message (all valid base64) -> 84."""
    c = creds(backend, scheme)
    a = wire_of(vpseal.seal_request(c, PAYLOAD).body)
    b = wire_of(vpseal.seal_request(c, PAYLOAD).body)
    for wire in (b[:16] + a[16:], a[:16] + b[16:40] + a[40:], a[:40] + b[40:], a[:40] + a[44:]):
        body = PREFIX + wire.encode() + SUFFIX
        sealed_headers = vpseal.seal_request(c, PAYLOAD).headers
        headers = resign(sealed_headers, body, scheme)
        assert_error(_open(c, headers, body), vpseal.DecryptionError, 84, SECRETS)


def test_wrong_key_is_decryption_error(backend: str, scheme: str) -> None:
    sealed = vpseal.seal_request(creds(backend, scheme), PAYLOAD)
    wrong = creds(backend, scheme, key=OTHER_KEY_HEX)
    assert_error(_open(wrong, sealed.headers, sealed.body), vpseal.DecryptionError, 84, SECRETS)


def test_scheme_mismatch_is_signature_error(backend: str) -> None:
    sealed = vpseal.seal_request(creds(backend, "transfer"), PAYLOAD)
    pipe = creds(backend, "pipe")
    assert_error(_open(pipe, sealed.headers, sealed.body), vpseal.SignatureError, 83)
    sealed = vpseal.seal_request(pipe, PAYLOAD)
    assert_error(
        _open(creds(backend, "transfer"), sealed.headers, sealed.body), vpseal.SignatureError, 83
    )


# -- a table of malformed inputs --------------------------------------------------------------


def _signed(scheme: str, body: bytes, headers: dict[str, str]) -> tuple[dict[str, str], bytes]:
    """A body of the attacker's choice with a valid signature over it."""
    return resign(headers, body, scheme), body


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


def _malformed(
    c: vpseal.Credentials, backend: str, scheme: str
) -> list[tuple[str, Any, Any, Any, Any]]:
    """(name, keys, headers, body, expected)."""
    sealed = vpseal.seal_request(c, PAYLOAD)
    h, body = sealed.headers, sealed.body
    ts, nonce = h["x-timestamp"], h["x-nonce"]
    other = creds(backend, scheme, agent=OTHER_AGENT)
    not_json = vpseal.seal_request(c, b"not json")
    array = vpseal.seal_request(c, b'[{"username":"x"}]')
    bad_b64 = body[:60] + b"!!!!" + body[64:]
    newline = body[:60] + b"\\n" + body[62:]
    rows: list[tuple[str, Any, Any, Any, Any]] = []
    for name in ("x-agentid", "x-timestamp", "x-nonce", "x-signature"):
        rows.append((f"missing {name}", c, _without(h, name), body, F11))
        rows.append((f"{name} is None", c, dict(h, **{name: None}), body, F11))
        rows.append((f"{name} is int", c, dict(h, **{name: 12}), body, F11))
    odd = {"CONTENT-TYPE": "application/json", "X-AgentID": AGENT, "X-TIMESTAMP": ts}
    odd.update({"x-Nonce": nonce, "X-Signature": h["x-signature"]})
    rows += [
        ("header names in odd case", c, odd, body, OK),
        ("header values as bytes", c, {k: v.encode() for k, v in odd.items()}, body, OK),
        ("no content-type", c, _without(h, "Content-Type"), body, OK),
        ("nonce not hex", c, dict(h, **{"x-nonce": "z" * 32}), body, F11),
        ("nonce uppercase", c, dict(h, **{"x-nonce": "ABCDEF" + nonce[6:]}), body, F11),
        ("nonce 31 chars", c, dict(h, **{"x-nonce": nonce[:31]}), body, F11),
        ("nonce 33 chars", c, dict(h, **{"x-nonce": nonce + "a"}), body, F11),
        ("timestamp empty", c, dict(h, **{"x-timestamp": ""}), body, F11),
        ("timestamp letters", c, dict(h, **{"x-timestamp": "now"}), body, F11),
        ("timestamp negative", c, dict(h, **{"x-timestamp": "-" + ts}), body, F11),
        ("timestamp 17 digits", c, dict(h, **{"x-timestamp": "1" * 17}), body, F11),
        ("timestamp spaces", c, dict(h, **{"x-timestamp": f" {ts} "}), body, F11),
        ("timestamp float", c, dict(h, **{"x-timestamp": ts + ".5"}), body, F11),
        ("truncated body", c, h, body[:-1], F11),
        ("truncated body, half", c, h, body[: len(body) // 2], F11),
        ("empty body", c, h, b"", F11),
        ("body not JSON", c, h, b"cipherText=abc", F11),
        ("body JSON array", c, *_signed(scheme, b'["x"]', h), F11),
        ("cipherText a number", c, *_signed(scheme, b'{"cipherText":1}', h), F11),
        ("cipherText null", c, *_signed(scheme, b'{"cipherText":null}', h), F11),
        ("cipherText a list", c, *_signed(scheme, b'{"cipherText":["AAAA"]}', h), F11),
        ("extra key", c, *_signed(scheme, body[:-1] + b',"extra":"x"}', h), F11),
        ("body not UTF-8", c, *_signed(scheme, b'{"cipherText":"\xff\xfe"', h), F11),
        ("body deeply nested", c, h, b"[" * 100_000 + b"]" * 100_000, F11),
        ("wire too short (signed)", c, *_signed(scheme, PREFIX + b"AAAA" + SUFFIX, h), D84),
        ("wire empty (signed)", c, *_signed(scheme, PREFIX + SUFFIX, h), D84),
        ("wire only iv+tag (signed)", c, *_signed(scheme, body[:55] + SUFFIX, h), D84),
        ("wire bad base64 (signed)", c, *_signed(scheme, bad_b64, h), D84),
        ("wire not multiple of 4 (signed)", c, *_signed(scheme, body[:-3] + SUFFIX, h), D84),
        ("wire with newline escape (signed)", c, *_signed(scheme, newline, h), D84),
        ("wire too short, unsigned", c, h, PREFIX + b"AAAA" + SUFFIX, S83),
        ("plaintext not JSON", c, not_json.headers, not_json.body, F11),
        ("plaintext a JSON array", c, array.headers, array.body, F11),
        ("unknown agent (Credentials)", other, h, body, F11),
        ("unknown agent (Keyring)", vpseal.Keyring([other]), h, body, F11),
        ("unknown agent (empty Keyring)", vpseal.Keyring(), h, body, F11),
        ("headers a list of pairs", c, list(h.items()), body, F11),
        ("headers None", c, None, body, F11),
        ("headers a str", c, "x-agentid: " + AGENT, body, F11),
        ("headers bytes", c, b"x-agentid", body, F11),
        ("headers an int", c, 7, body, F11),
        ("body an int", c, h, 12345, F11),
        ("body None", c, h, None, F11),
        ("body a dict", c, h, {"cipherText": wire_of(body)}, F11),
        ("body a list", c, h, [body], F11),
        ("oversized body", c, h, body + b" " * (1 << 20), F11),
    ]
    for plaintext in (b"1", b'"str"', b"null", b"true", b"{", b"\xff\xfe", b'{"a":1} x'):
        s = vpseal.seal_request(c, plaintext)
        rows.append((f"plaintext {plaintext!r}", c, s.headers, s.body, F11))
    return rows


def test_malformed_table(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    for name, keys, headers, body, expected in _malformed(c, backend, scheme):
        try:
            result = _open(keys, headers, body)
            check(result, expected, PAYLOAD, SECRETS)
        except Exception as exc:
            raise AssertionError(f"{name}: {exc!r}") from exc


def test_oversized_body_with_small_max_body(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD)
    n = len(sealed.body)
    opened = vpseal.open_request(c, sealed.headers, sealed.body, max_body=n, guard=WINDOW_ONLY)
    assert opened.payload == PAYLOAD
    result = _open(c, sealed.headers, sealed.body, max_body=n - 1)
    assert_error(result, vpseal.RequestFormatError, 11, SECRETS)
    result = _open(c, dict(sealed.headers, **{"X-Nonce": "x"}), sealed.body, max_body=n - 1)
    assert_error(result, vpseal.RequestFormatError, 11, SECRETS)


@pytest.mark.parametrize("value", [[AGENT], {"id": AGENT}], ids=["list", "dict"])
def test_unhashable_agent_header_with_keyring(backend: str, value: Any) -> None:
    """A header value that is not a string (here: unhashable) is a format error, not a
    TypeError escaping from the Keyring lookup."""
    c = creds(backend)
    sealed = vpseal.seal_request(c, PAYLOAD)
    headers = dict(sealed.headers, **{"x-agentid": value})
    for keys in (c, vpseal.Keyring([c]), {AGENT: c}):
        result = _open(keys, headers, sealed.body)
        assert_error(result, vpseal.RequestFormatError, 11, SECRETS)


@pytest.mark.parametrize(
    "plaintext",
    [b'{"amount":NaN}', b'{"amount":-Infinity,"a":[Infinity]}'],
    ids=["nan", "infinity"],
)
def test_non_json_number_tokens_in_plaintext(backend: str, plaintext: bytes) -> None:
    """NaN / Infinity are not JSON (RFC 8259), and SPEC.md: amounts are never binary floats.
    Opening must not hand back a float('nan') amount."""
    c = creds(backend)
    sealed = vpseal.seal_request(c, plaintext)
    result = _open(c, sealed.headers, sealed.body)
    assert_error(result, vpseal.RequestFormatError, 11)


BEYOND_DECIMAL = [b"1e99999999999999999999", b"-1e-99999999999999999999"]


@pytest.mark.parametrize("number", BEYOND_DECIMAL, ids=["huge", "tiny"])
def test_number_beyond_decimal_range_in_body(backend: str, scheme: str, number: bytes) -> None:
    """A JSON number whose exponent Decimal cannot hold makes Decimal raise InvalidOperation.
    In a body (slow path, parsed before any signature check: no key needed) that is code 11,
    in open_request and in its own slot of open_many, never a decimal exception."""
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD)
    for body in (
        b'{"cipherText":' + number + b"}",
        b'{"cipherText":"' + wire_of(sealed.body).encode() + b'","n":' + number + b"}",
        b"[" + number + b"]",
    ):
        assert_error(_open(c, sealed.headers, body), vpseal.RequestFormatError, 11)
        other = vpseal.seal_request(c, PAYLOAD)
        results = vpseal.open_many(
            c, [(sealed.headers, body), other], guard=vpseal.ReplayGuard.window_only()
        )
        assert_error(results[0], vpseal.RequestFormatError, 11)
        assert isinstance(results[1], vpseal.OpenedRequest)


@pytest.mark.parametrize("number", BEYOND_DECIMAL, ids=["huge", "tiny"])
def test_number_beyond_decimal_range_in_plaintext(backend: str, number: bytes) -> None:
    c = creds(backend)
    sealed = vpseal.seal_request(c, b'{"amount":' + number + b"}")
    assert_error(_open(c, sealed.headers, sealed.body), vpseal.RequestFormatError, 11)


def test_plaintext_whitespace_and_duplicates_are_json(backend: str) -> None:
    c = creds(backend)
    for plaintext, payload in (
        (b' {"a": 1}\n', {"a": 1}),
        (b'{"a":1,"a":2}', {"a": 2}),
        (b"{}", {}),
        ('{"é":"\\ud83d\\ude00"}'.encode(), {"é": "\U0001f600"}),
    ):
        sealed = vpseal.seal_request(c, plaintext)
        assert (
            vpseal.open_request(c, sealed.headers, sealed.body, guard=WINDOW_ONLY).payload
            == payload
        )


def test_errors_never_show_key_or_plaintext(backend: str, scheme: str) -> None:
    """Every error of the table and of tampering: str, repr, args and the formatted
    traceback hold neither the API KEY hex nor the plaintext."""
    c = creds(backend, scheme)
    secret_plain = vpseal.seal_request(c, ("SECRET-" + SECRET_VALUE).encode())
    result = _open(c, secret_plain.headers, secret_plain.body)
    assert_error(result, vpseal.RequestFormatError, 11, [*SECRETS, "SECRET-SECRET"])
    bad_json = b'{"username":"' + SECRET_VALUE.encode() + b'",}'
    sealed = vpseal.seal_request(c, bad_json)
    result = _open(c, sealed.headers, sealed.body)
    assert_error(result, vpseal.RequestFormatError, 11, SECRETS)
    assert_no_leak(result, [bad_json.decode()])


def test_signature_checked_before_format_of_body_contents(backend: str, scheme: str) -> None:
    """A canonical body with garbage inside: unsigned -> 83 (signature first), signed -> 84."""
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD)
    body = PREFIX + b"\x00\x01\xff not base64 at all" + SUFFIX
    assert_error(_open(c, sealed.headers, body), vpseal.SignatureError, 83)
    headers, body = _signed(scheme, body, sealed.headers)
    assert_error(_open(c, headers, body), vpseal.DecryptionError, 84)


@pytest.mark.parametrize(
    "make",
    [
        lambda body: "\ud800",
        lambda body: body.decode() + "\udcff",
        lambda body: body.decode()[:20] + "\udcff" + body.decode()[21:],
    ],
    ids=["only-surrogate", "trailing-surrogate", "surrogate-in-wire"],
)
def test_str_body_with_lone_surrogate(backend: str, make: Any) -> None:
    """A str body is accepted (and encoded to UTF-8); one that cannot be encoded (e.g. a
    framework decoded bad bytes with errors="surrogateescape") is a format error, not a
    UnicodeEncodeError escaping open_request (open_many already says 11)."""
    c = creds(backend)
    sealed = vpseal.seal_request(c, PAYLOAD)
    body = make(sealed.body)
    assert_error(_open(c, sealed.headers, body), vpseal.RequestFormatError, 11, SECRETS)
    assert_error(
        vpseal.open_many(c, [(sealed.headers, body)], guard=WINDOW_ONLY)[0],
        vpseal.RequestFormatError,
        11,
    )


def test_mapping_entry_for_another_agent_is_not_used(backend: str) -> None:
    """keys may be any mapping of agent id -> Credentials. An entry whose Credentials belong to
    another agent (an alias) must not open that agent's requests under the alias: the result
    would claim an agent_id nobody signed for, and the replay guard (which keys nonces by agent)
    would accept the same request once per alias."""
    c = creds(backend)
    keys = {AGENT: c, "alias": c}
    guard = vpseal.ReplayGuard()
    sealed = vpseal.seal_request(c, PAYLOAD)
    assert vpseal.open_request(keys, sealed.headers, sealed.body, guard=guard).agent_id == AGENT
    aliased = dict(sealed.headers, **{"x-agentid": "alias"})
    result = _open(keys, aliased, sealed.body, guard=guard)
    assert isinstance(result, vpseal.RequestError), f"replayed under an alias: {result!r}"
    assert result.api_code in (11, 83)
