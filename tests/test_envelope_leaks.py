"""No exception carries a plaintext (issue 9, item 4): not in its message or args, not in an
attribute (a JSONDecodeError keeps the whole text in .doc, a UnicodeDecodeError in .object),
not through __cause__ / __context__, and not in the locals of a vpseal frame on its traceback
(which error reporters record). Every payload here carries MARKER, and every exception raised
for it is searched for MARKER wherever a log, a reporter or a debugger could look."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _envelope_helpers import (
    AGENT,
    PREFIX,
    SUFFIX,
    WINDOW_ONLY,
    assert_error,
    assert_exception_hides,
    creds,
    exception_exposure,
    fresh_nonce,
    outcome,
    resign,
    wire_of,
)

import vpseal

MARKER = "plaintext-marker-4c1e9"
M = MARKER.encode()
NOW = 1_769_746_894_501

# Decrypted payloads that are not a JSON object, each with the marker in it.
BAD_PLAINTEXTS: dict[str, bytes] = {
    "not JSON": M + b" is not JSON",
    "truncated": b'{"note":"' + M,
    "bad UTF-8": b'{"note":"' + M + b'\xff\xfe"}',
    "bad UTF-8 first": b'\xc3{"note":"' + M + b'"}',
    "UTF-8 BOM": b'\xef\xbb\xbf{"note":"' + M + b'"}',
    "control character": b'{"note":"' + M + b'\x01"}',
    "single quotes": b"{'note':'" + M + b"'}",
    "deeply nested object": b'{"a":' * 30_000 + b'"' + M + b'"' + b"}" * 30_000,
    "deeply nested array": b'{"note":"' + M + b'","a":' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    "array": b'["' + M + b'"]',
    "string": b'"' + M + b'"',
    "trailing data": b'{"note":"' + M + b'"} 1',
    "two objects": b'{"note":"' + M + b'"}{}',
    "trailing NUL": b'{"note":"' + M + b'"}\x00',
    "exponent beyond Decimal": b'{"note":"' + M + b'","n":1e999999999999999999999}',
    "integer of 5000 digits": b'{"note":"' + M + b'","n":' + b"9" * 5000 + b"}",
    "NaN": b'{"note":"' + M + b'","n":NaN}',
    "-Infinity": b'{"note":"' + M + b'","n":-Infinity}',
}


def _respelled(sealed: Any, scheme: str) -> tuple[dict[str, str], bytes]:
    body = b'{ "cipherText": "' + wire_of(sealed.body).encode() + b'" }'
    return resign(sealed.headers, body, scheme), body


def _paths(c: vpseal.Credentials, scheme: str, sealed: Any) -> Iterator[tuple[str, Any]]:
    """(path, result) of opening sealed every way there is; each with a fresh guard, so that
    the result is the payload's verdict, not a replay."""
    headers, body = sealed.headers, sealed.body

    def one(h: Any, b: bytes) -> Callable[[], Any]:
        return lambda: vpseal.open_request(c, h, b, guard=vpseal.ReplayGuard(), now_ms=NOW)

    yield "byte-exact", outcome(one(headers, body))
    yield "re-spelled body", outcome(one(*_respelled(sealed, scheme)))
    yield "headers in another case", outcome(one({k.upper(): v for k, v in headers.items()}, body))
    yield (
        "window-only guard",
        outcome(lambda: vpseal.open_request(c, headers, body, guard=WINDOW_ONLY, now_ms=NOW)),
    )
    batch = [(headers, body), _respelled(sealed, scheme)]
    for i, result in enumerate(vpseal.open_many(c, batch, guard=WINDOW_ONLY, now_ms=NOW)):
        yield f"batch item {i}", result
    [result] = vpseal.open_many(c, batch[:1], guard=vpseal.ReplayGuard(), now_ms=NOW)
    yield "batch with a guard", result


def test_the_search_finds_what_it_looks_for() -> None:
    """The search is not blind: it finds the text a JSONDecodeError keeps, on the chain of a
    `raise ... from None` (which hides the context from tracebacks but keeps it)."""
    try:
        try:
            json.loads(MARKER)
        except ValueError:
            raise RuntimeError("parse failed") from None
    except RuntimeError as exc:
        wheres = [w for w, v in exception_exposure(exc) if MARKER in repr(v)]
        assert any(".__context__:JSONDecodeError.doc" in w for w in wheres), wheres
        with pytest.raises(AssertionError, match="holds the plaintext"):
            assert_exception_hides(exc, MARKER)


@pytest.mark.parametrize("case", BAD_PLAINTEXTS, ids=list(BAD_PLAINTEXTS))
def test_bad_plaintext_error_hides_the_plaintext(backend: str, scheme: str, case: str) -> None:
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, BAD_PLAINTEXTS[case], timestamp_ms=NOW)
    for path, result in _paths(c, scheme, sealed):
        assert_error(result, vpseal.RequestFormatError, 11)
        try:
            assert_exception_hides(result, MARKER)
        except AssertionError as exc:
            raise AssertionError(f"{path}: {exc}") from None


def test_errors_on_a_verified_request_hide_its_plaintext(backend: str, scheme: str) -> None:
    """Errors raised while a good plaintext is held (a replay, a full store, a store that
    fails in its own way) do not carry it either, nor keep it in a frame."""
    c = creds(backend, scheme)
    payload = {"note": MARKER}
    sealed = vpseal.seal_request(c, payload, timestamp_ms=NOW)
    respelled = _respelled(sealed, scheme)
    guard = vpseal.ReplayGuard()
    assert vpseal.open_request(c, *respelled, guard=guard, now_ms=NOW).payload == payload
    for headers, body in [(sealed.headers, sealed.body), respelled]:
        replayed = outcome(
            lambda h=headers, b=body: vpseal.open_request(c, h, b, guard=guard, now_ms=NOW)
        )
        assert_error(replayed, vpseal.ReplayError, 83)
        assert_exception_hides(replayed, MARKER)
    [replayed] = vpseal.open_many(c, [sealed], guard=guard, now_ms=NOW)
    assert_error(replayed, vpseal.ReplayError, 83)
    assert_exception_hides(replayed, MARKER)

    full = vpseal.ReplayGuard(store=vpseal.MemoryNonceStore(max_entries=1))
    refused = outcome(lambda: vpseal.open_request(c, *respelled, guard=full, now_ms=NOW))
    assert isinstance(refused, vpseal.NonceStoreError) and refused.api_code == 7
    assert_exception_hides(refused, MARKER)

    class Broken:
        def add(self, keys: Any, ttl_ms: int) -> bool:
            raise RuntimeError("store broke")

    broken = vpseal.ReplayGuard(store=Broken())
    for headers, body in [(sealed.headers, sealed.body), respelled]:
        with pytest.raises(RuntimeError) as info:
            vpseal.open_request(c, headers, body, guard=broken, now_ms=NOW)
        assert_exception_hides(info.value, MARKER)
    with pytest.raises(RuntimeError) as info:
        vpseal.open_many(c, [sealed, respelled], guard=broken, now_ms=NOW)
    assert_exception_hides(info.value, MARKER)


def test_undecryptable_request_errors_hide_everything(backend: str, scheme: str) -> None:
    """Wrong key, changed tag: DecryptionError, with no plaintext anywhere (GCM releases none)
    and no trace of the key."""
    c = creds(backend, scheme)
    other = creds(backend, scheme, key=bytes(range(32)))
    sealed = vpseal.seal_request(c, {"note": MARKER}, timestamp_ms=NOW)
    for path, result in _paths(other, scheme, sealed):
        assert_error(result, vpseal.DecryptionError, 84), path
        assert_exception_hides(result, MARKER)
        assert_exception_hides(result, bytes(range(32)).hex())


@pytest.mark.parametrize(
    "payload",
    [
        {"note": MARKER + "\ud800"},  # a lone surrogate: UnicodeEncodeError.object is the text
        {"note": MARKER, "n": float("nan")},
        {"note": MARKER, 1: 2},
        {"note": MARKER, "x": object()},
    ],
    ids=["lone surrogate", "NaN", "int key", "object"],
)
def test_payload_error_chain_hides_the_payload(backend: str, payload: dict[Any, Any]) -> None:
    """Sealing: PayloadError's chain does not hold the JSON text. (Its frames hold the payload
    the caller passed, as the caller's own frame does: they are not searched.)"""
    c = creds(backend)
    for seal in (
        lambda: vpseal.seal_request(c, payload),
        lambda: vpseal.seal_many(c, [{"ok": 1}, payload]),
        lambda: vpseal.envelope.payload_bytes(payload),
    ):
        with pytest.raises(vpseal.PayloadError) as info:
            seal()
        assert info.value.__context__ is None and info.value.__cause__ is None
        assert_exception_hides(info.value, MARKER, frames=False)


def test_the_guard_record_keeps_no_plaintext(backend: str) -> None:
    """What the memory guard keeps of a request holds nothing of it in the clear."""
    c = creds(backend)
    store = vpseal.MemoryNonceStore()
    guard = vpseal.ReplayGuard(store=store)
    nonce = fresh_nonce()
    sealed = vpseal.seal_request(c, {"note": MARKER}, timestamp_ms=NOW, nonce=nonce)
    vpseal.open_request(c, sealed.headers, sealed.body, guard=guard, now_ms=NOW)
    state = [getattr(store, name) for name in type(store).__slots__]
    assert not any(MARKER in repr(value) or nonce in repr(value) for value in state)
    assert AGENT not in repr(state)


def test_plain_bodies_that_are_not_json_keep_no_context(backend: str) -> None:
    """The outer body is not secret, but its parse error is not chained either."""
    c = creds(backend)
    sealed = vpseal.seal_request(c, {"a": 1}, timestamp_ms=NOW)
    body = b'{"cipherText": ' + M + b"}"
    result = outcome(
        lambda: vpseal.open_request(c, sealed.headers, body, guard=WINDOW_ONLY, now_ms=NOW)
    )
    assert_error(result, vpseal.RequestFormatError, 11)
    assert result.__context__ is None
    assert PREFIX and SUFFIX  # (shared names, used by the other envelope tests)
