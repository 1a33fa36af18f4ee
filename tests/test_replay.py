"""Replay protection: the timestamp window, nonces and message ids seen (memory and Redis
stores), and where the guard sits in open_request's order (the window after the signature and
before decryption; the record only once the GCM tag has verified)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from _envelope_helpers import (
    AGENT,
    KEY_HEX,
    OTHER_AGENT,
    PREFIX,
    SUFFIX,
    WINDOW_ONLY,
    assert_error,
    creds,
    fresh_nonce,
    now_ms,
    outcome,
    redis_client,
    redis_url,
    resign,
    wire_of,
)

import vpseal
from vpseal.errors import NonceStoreFull
from vpseal.replay import DEFAULT_MAX_ENTRIES

PAYLOAD = {"username": "player001", "transId": "CASHOUT-20250129-001"}
NOW = 1_769_746_894_501
WINDOW = 300_000


def _open(keys: Any, sealed: Any, **kw: Any) -> Any:
    headers, body = (sealed.headers, sealed.body) if hasattr(sealed, "body") else sealed
    return outcome(lambda: vpseal.open_request(keys, headers, body, **kw))


# -- the guard inside open_request -----------------------------------------------------------


def test_same_request_twice(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard()
    sealed = vpseal.seal_request(c, PAYLOAD)
    assert _open(c, sealed, guard=guard).payload == PAYLOAD
    for _ in range(3):
        assert_error(_open(c, sealed, guard=guard), vpseal.ReplayError, 83)
    # with the explicit opt-out of the nonce check, opening stays a pure function
    assert _open(c, sealed, guard=WINDOW_ONLY).payload == PAYLOAD
    assert _open(c, sealed, guard=WINDOW_ONLY).payload == PAYLOAD


def test_default_guard_uses_the_clock(backend: str) -> None:
    c = creds(backend)
    guard = vpseal.ReplayGuard()
    assert guard.window_ms == 300_000
    assert isinstance(guard.store, vpseal.MemoryNonceStore)
    assert _open(c, vpseal.seal_request(c, PAYLOAD), guard=guard).payload == PAYLOAD
    stale = vpseal.seal_request(c, PAYLOAD, timestamp_ms=now_ms() - 301_000)
    assert_error(_open(c, stale, guard=guard), vpseal.ReplayError, 83)
    future = vpseal.seal_request(c, PAYLOAD, timestamp_ms=now_ms() + 301_000)
    assert_error(_open(c, future, guard=guard), vpseal.ReplayError, 83)
    near = vpseal.seal_request(c, PAYLOAD, timestamp_ms=now_ms() - 290_000)
    assert _open(c, near, guard=guard).payload == PAYLOAD


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (0, True),
        (-1, True),
        (1, True),
        (-(WINDOW - 1), True),
        (WINDOW - 1, True),
        (-WINDOW, True),
        (WINDOW, True),
        (-(WINDOW + 1), False),
        (WINDOW + 1, False),
        (-10 * WINDOW, False),
        (10 * WINDOW, False),
        (-NOW, False),  # timestamp 0
    ],
)
def test_window_both_directions(backend: str, scheme: str, offset: int, accepted: bool) -> None:
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard(window_ms=WINDOW)
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW + offset)
    result = _open(c, sealed, guard=guard, now_ms=NOW)
    if accepted:
        assert result.payload == PAYLOAD and result.timestamp_ms == NOW + offset
    else:
        assert_error(result, vpseal.ReplayError, 83)


def test_custom_window(backend: str) -> None:
    c = creds(backend)
    guard = vpseal.ReplayGuard(window_ms=1_000)
    ok = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW - 1_000)
    late = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW - 1_001)
    assert _open(c, ok, guard=guard, now_ms=NOW).payload == PAYLOAD
    assert_error(_open(c, late, guard=guard, now_ms=NOW), vpseal.ReplayError, 83)


@pytest.mark.parametrize("window", [0, -1, True, 1.5, "300000", None])
def test_guard_window_validation(window: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        vpseal.ReplayGuard(window_ms=window)


def test_captured_body_with_fresh_headers_is_rejected(backend: str, scheme: str) -> None:
    """The signature has no secret: an attacker re-sends a captured body with a new nonce,
    timestamp and recomputed signature. The guard remembers the IV + tag and refuses it."""
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard()
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW)
    assert _open(c, sealed, guard=guard, now_ms=NOW).payload == PAYLOAD
    for delay in (1, 1_000, 299_000):
        headers = resign(
            sealed.headers, sealed.body, scheme, x_nonce=fresh_nonce(), x_timestamp=str(NOW + delay)
        )
        # without the nonce check it would open: it is a perfectly valid request
        opened = _open(c, (headers, sealed.body), guard=WINDOW_ONLY, now_ms=NOW + delay)
        assert opened.payload == PAYLOAD
        result = _open(c, (headers, sealed.body), guard=guard, now_ms=NOW + delay)
        assert_error(result, vpseal.ReplayError, 83)


def test_captured_body_respelled_is_rejected(backend: str, scheme: str) -> None:
    """The same message in another JSON spelling (slow path) has the same IV + tag."""
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard()
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW)
    assert _open(c, sealed, guard=guard, now_ms=NOW).payload == PAYLOAD
    wire = wire_of(sealed.body)
    escaped = f"\\u{ord(wire[0]):04x}" + wire[1:]
    for body in (
        b'{ "cipherText": "' + wire.encode() + b'" }',
        PREFIX + escaped.encode() + SUFFIX,
    ):
        headers = resign(sealed.headers, body, scheme, x_nonce=fresh_nonce())
        assert _open(c, (headers, body), guard=WINDOW_ONLY, now_ms=NOW).payload == PAYLOAD
        assert_error(_open(c, (headers, body), guard=guard, now_ms=NOW), vpseal.ReplayError, 83)


def test_slow_path_request_then_canonical_replay(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard()
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW)
    spaced = b'{"cipherText": "' + wire_of(sealed.body).encode() + b'"}'
    first = resign(sealed.headers, spaced, scheme)
    assert _open(c, (first, spaced), guard=guard, now_ms=NOW).payload == PAYLOAD
    again = resign(sealed.headers, sealed.body, scheme, x_nonce=fresh_nonce())
    assert_error(_open(c, (again, sealed.body), guard=guard, now_ms=NOW), vpseal.ReplayError, 83)


def test_nonce_reused_with_another_body(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard()
    nonce = fresh_nonce()
    first = vpseal.seal_request(c, PAYLOAD, nonce=nonce, timestamp_ms=NOW)
    second = vpseal.seal_request(c, {"other": 1}, nonce=nonce, timestamp_ms=NOW + 5)
    assert _open(c, first, guard=guard, now_ms=NOW).payload == PAYLOAD
    assert_error(_open(c, second, guard=guard, now_ms=NOW), vpseal.ReplayError, 83)


def test_nonces_are_per_agent(backend: str, scheme: str) -> None:
    a = creds(backend, scheme)
    b = creds(backend, scheme, agent=OTHER_AGENT)
    ring = vpseal.Keyring([a, b])
    guard = vpseal.ReplayGuard()
    nonce = fresh_nonce()
    for c in (a, b):
        sealed = vpseal.seal_request(c, PAYLOAD, nonce=nonce, timestamp_ms=NOW)
        assert _open(ring, sealed, guard=guard, now_ms=NOW).agent_id == c.agent_id
        assert_error(_open(ring, sealed, guard=guard, now_ms=NOW), vpseal.ReplayError, 83)


def test_failed_signature_or_format_consumes_nothing(backend: str, scheme: str) -> None:
    """The guard runs after the signature check: rejected requests do not burn the nonce."""
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard()
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW)
    bad_sig = dict(sealed.headers, **{"x-signature": "0" * 64})
    result = _open(c, (bad_sig, sealed.body), guard=guard, now_ms=NOW)
    assert_error(result, vpseal.SignatureError, 83)
    bad_ts = dict(sealed.headers, **{"x-timestamp": "soon"})
    result = _open(c, (bad_ts, sealed.body), guard=guard, now_ms=NOW)
    assert_error(result, vpseal.RequestFormatError, 11)
    result = _open(c, (sealed.headers, b'{"cipherText":1}'), guard=guard, now_ms=NOW)
    assert_error(result, vpseal.RequestFormatError, 11)
    assert _open(c, sealed, guard=guard, now_ms=NOW).payload == PAYLOAD


def test_order_signature_then_window_then_decryption(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard(window_ms=WINDOW)
    stale_ts = str(NOW - WINDOW - 1)
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW - WINDOW - 1)
    # stale and wrongly signed: the signature is checked first
    bad_sig = dict(sealed.headers, **{"x-signature": "f" * 64})
    result = _open(c, (bad_sig, sealed.body), guard=guard, now_ms=NOW)
    assert_error(result, vpseal.SignatureError, 83)
    # stale, signed, undecryptable: the guard speaks before decryption
    wire = wire_of(sealed.body)
    broken = PREFIX + (wire[:-5] + ("A" if wire[-5] != "A" else "B") + wire[-4:]).encode() + SUFFIX
    headers = resign(sealed.headers, broken, scheme, x_timestamp=stale_ts)
    assert_error(_open(c, (headers, broken), guard=guard, now_ms=NOW), vpseal.ReplayError, 83)
    # in the window, signed, undecryptable -> 84 ...
    nonce = fresh_nonce()
    headers = resign(sealed.headers, broken, scheme, x_timestamp=str(NOW), x_nonce=nonce)
    assert_error(_open(c, (headers, broken), guard=guard, now_ms=NOW), vpseal.DecryptionError, 84)
    # ... and nothing was recorded (only the GCM tag proves the sender has the key): the same
    # again is 84 again, and a genuine request with that nonce opens
    assert_error(_open(c, (headers, broken), guard=guard, now_ms=NOW), vpseal.DecryptionError, 84)
    genuine = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW, nonce=nonce)
    assert _open(c, genuine, guard=guard, now_ms=NOW).payload == PAYLOAD
    # a replayed request whose plaintext is not JSON (its tag verified, so it was recorded)
    not_json = vpseal.seal_request(c, b"not json", timestamp_ms=NOW)
    assert_error(_open(c, not_json, guard=guard, now_ms=NOW), vpseal.RequestFormatError, 11)
    assert_error(_open(c, not_json, guard=guard, now_ms=NOW), vpseal.ReplayError, 83)


def test_guard_expiry_forgets_after_window(backend: str) -> None:
    """Memory is bounded: a nonce is kept only until its request would be stale anyway."""
    c = creds(backend)
    store = vpseal.MemoryNonceStore()
    guard = vpseal.ReplayGuard(window_ms=400, store=store)
    ts = now_ms()
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=ts)
    assert _open(c, sealed, guard=guard, now_ms=ts).payload == PAYLOAD
    assert len(store) == 2  # nonce + message id
    assert_error(_open(c, sealed, guard=guard, now_ms=ts), vpseal.ReplayError, 83)
    time.sleep(0.7)
    # the entries have expired: they vanish as soon as the store is used again
    other = vpseal.seal_request(c, PAYLOAD, timestamp_ms=ts)
    assert _open(c, other, guard=guard, now_ms=ts).payload == PAYLOAD
    assert len(store) == 2
    assert _open(c, sealed, guard=guard, now_ms=ts).payload == PAYLOAD
    assert len(store) == 4


def test_guard_check_direct() -> None:
    guard = vpseal.ReplayGuard(window_ms=1_000)
    guard.check(AGENT, NOW, "a" * 32, now=NOW)
    with pytest.raises(vpseal.ReplayError):
        guard.check(AGENT, NOW, "a" * 32, now=NOW)
    with pytest.raises(vpseal.ReplayError):
        guard.check(AGENT, NOW, "b" * 32, now=NOW + 1_001)
    guard.check(AGENT, NOW, "b" * 32, message_id="m1", now=NOW)
    with pytest.raises(vpseal.ReplayError):
        guard.check(AGENT, NOW, "c" * 32, message_id="m1", now=NOW)
    guard.check(OTHER_AGENT, NOW, "c" * 32, message_id="m1", now=NOW)
    err = vpseal.ReplayError("x")
    assert err.api_code == 83 and not isinstance(err, vpseal.SignatureError)


# -- the guard is required; the explicit opt-out keeps the window (issue 8) --------------------


def _respelled(c: vpseal.Credentials, scheme: str, sealed: Any) -> tuple[dict[str, str], bytes]:
    """The same request as another JSON spelling of its body (open_request's slow path)."""
    body = b'{ "cipherText": "' + wire_of(sealed.body).encode() + b'" }'
    return resign(sealed.headers, body, scheme), body


def test_guard_is_required(backend: str, scheme: str) -> None:
    """Leaving the guard out, or passing None, is a TypeError before anything is opened: it
    never means "no checks". open_many raises too (not an error in every slot)."""
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=1)
    requests = [(sealed.headers, sealed.body), _respelled(c, scheme, sealed)]
    for headers, body in requests:
        with pytest.raises(TypeError, match="guard"):
            vpseal.open_request(c, headers, body)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="window_only"):
            vpseal.open_request(c, headers, body, guard=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="guard"):
        vpseal.open_many(c, requests)  # type: ignore[call-arg]
    for wrong in (None, False, "none", object(), vpseal.MemoryNonceStore()):
        with pytest.raises(TypeError, match="window_only"):
            vpseal.open_many(c, requests, guard=wrong)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="window_only"):
            vpseal.open_request(c, *requests[0], guard=wrong)  # type: ignore[arg-type]
    # also when the request itself would be refused: the call is wrong whatever it carries
    with pytest.raises(TypeError, match="guard"):
        vpseal.open_request(c, sealed.headers, b"not json")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="guard"):
        vpseal.open_many(c, [])  # type: ignore[call-arg]


def test_window_only_refuses_timestamp_one(backend: str, scheme: str) -> None:
    """The issue's request, sealed with timestamp_ms=1, is refused (ReplayError, code 83) by
    the opt-out as by a full guard, on the fast path, the slow path and in a batch."""
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=1)
    respelled = _respelled(c, scheme, sealed)
    for guard in (vpseal.ReplayGuard.window_only(), WINDOW_ONLY, vpseal.ReplayGuard()):
        assert_error(_open(c, sealed, guard=guard), vpseal.ReplayError, 83)
        assert_error(_open(c, respelled, guard=guard), vpseal.ReplayError, 83)
        for result in vpseal.open_many(c, [sealed, respelled], guard=guard):
            assert_error(result, vpseal.ReplayError, 83)
    # it is a well-formed, correctly signed request: only the window refuses it
    assert _open(c, sealed, guard=WINDOW_ONLY, now_ms=1).payload == PAYLOAD
    assert _open(c, respelled, guard=WINDOW_ONLY, now_ms=1).payload == PAYLOAD


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (-WINDOW, True), (WINDOW, True), (-(WINDOW + 1), False), (WINDOW + 1, False)],
)
def test_window_only_keeps_the_default_window(
    backend: str, scheme: str, offset: int, accepted: bool
) -> None:
    """The opt-out's window is the ReplayGuard's default, +-5 minutes, both ways."""
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard.window_only()
    assert guard.window_ms == vpseal.ReplayGuard().window_ms == WINDOW
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW + offset)
    for result in (
        _open(c, sealed, guard=guard, now_ms=NOW),
        vpseal.open_many(c, [sealed], guard=guard, now_ms=NOW)[0],
    ):
        if accepted:
            assert result.payload == PAYLOAD
        else:
            assert_error(result, vpseal.ReplayError, 83)


def test_window_only_uses_the_clock_and_a_custom_window(backend: str) -> None:
    c = creds(backend)
    fresh = vpseal.seal_request(c, PAYLOAD)
    stale = vpseal.seal_request(c, PAYLOAD, timestamp_ms=now_ms() - 301_000)
    assert _open(c, fresh, guard=WINDOW_ONLY).payload == PAYLOAD
    assert_error(_open(c, stale, guard=WINDOW_ONLY), vpseal.ReplayError, 83)
    narrow = vpseal.ReplayGuard.window_only(window_ms=1_000)
    ok = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW - 1_000)
    late = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW - 1_001)
    assert _open(c, ok, guard=narrow, now_ms=NOW).payload == PAYLOAD
    assert_error(_open(c, late, guard=narrow, now_ms=NOW), vpseal.ReplayError, 83)


def test_window_only_is_explicit_and_remembers_nothing(backend: str, scheme: str) -> None:
    """What the opt-out gives up: the same request opens again and again (so does a captured
    body under fresh headers); and what it says about itself."""
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard.window_only()
    sealed = vpseal.seal_request(c, PAYLOAD)
    for _ in range(3):
        assert _open(c, sealed, guard=guard).payload == PAYLOAD
    assert [r.payload for r in vpseal.open_many(c, [sealed] * 3, guard=guard)] == [PAYLOAD] * 3
    assert guard.checks_nonces is False and vpseal.ReplayGuard().checks_nonces is True
    assert repr(guard) == "ReplayGuard.window_only(window_ms=300000)"
    assert isinstance(guard, vpseal.ReplayGuard)
    # its store cannot make a full guard that silently checks nothing: it fails closed
    borrowed = vpseal.ReplayGuard(store=guard.store)
    assert_error(_open(c, sealed, guard=borrowed), vpseal.NonceStoreError, 7)
    for window in (0, -1, True, 1.5, "300000", None):
        with pytest.raises((ValueError, TypeError)):
            vpseal.ReplayGuard.window_only(window_ms=window)  # type: ignore[arg-type]


def test_window_only_still_checks_signature_before_window(backend: str, scheme: str) -> None:
    """The opt-out changes nothing else: a bad signature is still SignatureError, and an
    undecryptable body inside the window is still DecryptionError."""
    c = creds(backend, scheme)
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=1)
    bad_sig = dict(sealed.headers, **{"x-signature": "0" * 64})
    assert_error(_open(c, (bad_sig, sealed.body), guard=WINDOW_ONLY), vpseal.SignatureError, 83)
    fresh = vpseal.seal_request(c, PAYLOAD)
    wire = wire_of(fresh.body)
    broken = PREFIX + (wire[:40] + ("A" if wire[40] != "A" else "B") + wire[41:]).encode() + SUFFIX
    headers = resign(fresh.headers, broken, scheme)
    assert_error(_open(c, (headers, broken), guard=WINDOW_ONLY), vpseal.DecryptionError, 84)


def test_guard_shared_by_threads(backend: str, scheme: str) -> None:
    """8 threads open the same request through one guard: exactly one gets it."""
    c = creds(backend, scheme)
    for _ in range(20):
        guard = vpseal.ReplayGuard()
        sealed = vpseal.seal_request(c, PAYLOAD)
        barrier = threading.Barrier(8, timeout=60)
        results: list[Any] = []

        def worker(sealed: Any, guard: Any, barrier: Any, results: list[Any]) -> None:
            barrier.wait()
            results.append(_open(c, sealed, guard=guard))

        args = (sealed, guard, barrier, results)
        threads = [threading.Thread(target=worker, args=args) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ok = [r for r in results if isinstance(r, vpseal.OpenedRequest)]
        assert len(ok) == 1
        for r in results:
            if r not in ok:
                assert_error(r, vpseal.ReplayError, 83)


# -- only a verified request is recorded (SPEC.md section 4) -----------------------------------


def _forged(sealed: Any, scheme: str, *, respell: bool = False) -> tuple[dict[str, str], bytes]:
    """What anyone can send without the key: the genuine request's nonce and timestamp, a
    body whose ciphertext is changed (so its GCM tag fails; its IV and tag, the message id,
    are the genuine ones) and a signature recomputed over it."""
    wire = wire_of(sealed.body)
    changed = wire[:44] + ("A" if wire[44] != "A" else "B") + wire[45:]  # in the ciphertext
    if respell:
        body = b'{"cipherText": "' + changed.encode() + b'"}'
    else:
        body = PREFIX + changed.encode() + SUFFIX
    return resign(sealed.headers, body, scheme), body


def test_bad_tag_does_not_burn_the_nonce(backend: str, scheme: str) -> None:
    """A request with the genuine one's nonce, timestamp and message id, a valid signature
    and a bad tag is refused (84) and recorded nowhere: the genuine request still opens, once.
    On the byte-exact path, the re-spelled (slow) path and with headers in another case."""
    c = creds(backend, scheme)
    for variant in ("exact", "respelled", "header case"):
        store = vpseal.MemoryNonceStore()
        guard = vpseal.ReplayGuard(store=store)
        sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW)
        headers, body = _forged(sealed, scheme, respell=variant == "respelled")
        if variant == "header case":
            headers = {name.upper(): value for name, value in headers.items()}
        for _ in range(3):
            result = _open(c, (headers, body), guard=guard, now_ms=NOW)
            assert_error(result, vpseal.DecryptionError, 84)
        assert len(store) == 0, variant
        assert _open(c, sealed, guard=guard, now_ms=NOW).payload == PAYLOAD
        # the genuine request is remembered: as it is, and its body under fresh headers
        assert_error(_open(c, sealed, guard=guard, now_ms=NOW), vpseal.ReplayError, 83)
        copy = resign(sealed.headers, sealed.body, scheme, x_nonce=fresh_nonce())
        assert_error(_open(c, (copy, sealed.body), guard=guard, now_ms=NOW), vpseal.ReplayError, 83)
        # a forgery is still 84 afterwards: the store is consulted only after the tag verified
        assert_error(_open(c, (headers, body), guard=guard, now_ms=NOW), vpseal.DecryptionError, 84)


def test_bad_tag_in_a_batch_does_not_burn_the_nonce(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard()
    sealed = [vpseal.seal_request(c, {"i": i}, timestamp_ms=NOW) for i in range(3)]
    forged = [_forged(s, scheme, respell=i == 1) for i, s in enumerate(sealed)]
    results = vpseal.open_many(c, [*forged, *sealed, sealed[0], forged[2]], guard=guard, now_ms=NOW)
    for result in results[:3]:
        assert_error(result, vpseal.DecryptionError, 84)
    assert [r.payload for r in results[3:6]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert_error(results[6], vpseal.ReplayError, 83)
    assert_error(results[7], vpseal.DecryptionError, 84)


def test_stale_bad_tag_is_refused_by_the_window_first(backend: str, scheme: str) -> None:
    """The window may be (and is) checked before the GCM verdict: a stale forgery is 83."""
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard(window_ms=WINDOW)
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW - WINDOW - 1)
    for respell in (False, True):
        forged = _forged(sealed, scheme, respell=respell)
        assert_error(_open(c, forged, guard=guard, now_ms=NOW), vpseal.ReplayError, 83)
        assert_error(
            vpseal.open_many(c, [forged], guard=guard, now_ms=NOW)[0], vpseal.ReplayError, 83
        )
    assert len(guard.store) == 0  # type: ignore[arg-type]


def test_forgeries_cannot_fill_the_store(backend: str) -> None:
    """Any number of undecryptable requests leave a small store empty and usable."""
    c = creds(backend)
    store = vpseal.MemoryNonceStore(max_entries=4)
    guard = vpseal.ReplayGuard(store=store)
    genuine = [vpseal.seal_request(c, {"i": i}, timestamp_ms=NOW) for i in range(2)]
    forged = []
    for _ in range(50):
        sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW)
        forged.append(_forged(sealed, "transfer"))
    for result in vpseal.open_many(c, forged, guard=guard, now_ms=NOW):
        assert_error(result, vpseal.DecryptionError, 84)
    for request in forged[:10]:
        assert_error(_open(c, request, guard=guard, now_ms=NOW), vpseal.DecryptionError, 84)
    assert len(store) == 0
    assert [_open(c, s, guard=guard, now_ms=NOW).payload for s in genuine] == [{"i": 0}, {"i": 1}]


def test_genuine_and_forgeries_raced_by_threads(backend: str) -> None:
    """Forgeries with the genuine request's nonce, opened by other threads at the same time,
    never take its place: the genuine request opens, exactly once."""
    c = creds(backend)
    for _ in range(10):
        guard = vpseal.ReplayGuard()
        sealed = vpseal.seal_request(c, PAYLOAD)
        forged = _forged(sealed, "transfer")
        requests = [forged] * 6 + [sealed] * 2
        barrier = threading.Barrier(len(requests), timeout=60)
        results: list[Any] = [None] * len(requests)

        def worker(
            i: int,
            barrier: Any = barrier,
            results: list[Any] = results,
            requests: list[Any] = requests,
            guard: Any = guard,
        ) -> None:
            barrier.wait()
            results[i] = _open(c, requests[i], guard=guard)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for result in results[:6]:
            assert_error(result, vpseal.DecryptionError, 84)
        genuine = results[6:]
        assert sum(isinstance(r, vpseal.OpenedRequest) for r in genuine) == 1
        assert any(isinstance(r, vpseal.ReplayError) for r in genuine)


# -- the memory store is bounded: full, it refuses (code 7) rather than grow or forget ----------


def test_full_memory_store_refuses_and_recovers(backend: str) -> None:
    c = creds(backend)
    store = vpseal.MemoryNonceStore(max_entries=4)  # two requests: a nonce and a message id each
    guard = vpseal.ReplayGuard(window_ms=300, store=store)
    first, second, third = (vpseal.seal_request(c, {"i": i}, timestamp_ms=NOW) for i in range(3))
    assert _open(c, first, guard=guard, now_ms=NOW).payload == {"i": 0}
    assert _open(c, second, guard=guard, now_ms=NOW).payload == {"i": 1}
    assert len(store) == 4
    refused = _open(c, third, guard=guard, now_ms=NOW)
    assert_error(refused, NonceStoreFull, 7)
    assert isinstance(refused, vpseal.NonceStoreError)
    assert "full" in str(refused) and "4" in str(refused)
    assert_error(vpseal.open_many(c, [third], guard=guard, now_ms=NOW)[0], NonceStoreFull, 7)
    # full, it forgets nothing early: a replay is still a replay
    assert_error(_open(c, first, guard=guard, now_ms=NOW), vpseal.ReplayError, 83)
    assert len(store) == 4  # the refused request was not recorded
    # once the two entries have expired (a 300 ms window), new requests are accepted again
    deadline = time.monotonic() + 10
    while True:
        time.sleep(0.05)
        result = _open(c, third, guard=guard, now_ms=NOW)
        if isinstance(result, vpseal.OpenedRequest):
            break
        assert_error(result, NonceStoreFull, 7)
        assert time.monotonic() < deadline, "the store never made room"
    assert result.payload == {"i": 2}
    assert len(store) == 2


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10", None])
def test_memory_store_max_entries_validation(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        vpseal.MemoryNonceStore(max_entries=bad)


def test_memory_store_default_bound() -> None:
    store = vpseal.MemoryNonceStore()
    assert store.max_entries == DEFAULT_MAX_ENTRIES > 0
    assert repr(store) == f"MemoryNonceStore(max_entries={DEFAULT_MAX_ENTRIES})"
    assert vpseal.ReplayGuard().store.max_entries == DEFAULT_MAX_ENTRIES  # type: ignore[attr-defined]
    assert vpseal.MemoryNonceStore(max_entries=10).max_entries == 10


def test_memory_store_full_add_is_all_or_nothing() -> None:
    store = vpseal.MemoryNonceStore(max_entries=3)
    assert store.add(["a", "b"], 60_000)
    with pytest.raises(NonceStoreFull):
        store.add(["c", "d"], 60_000)
    assert len(store) == 2
    assert store.add(["c"], 60_000)
    assert not store.add(["a"], 60_000)  # present: False, full or not
    assert not store.add(["z", "c"], 60_000)
    with pytest.raises(NonceStoreFull):
        store.add(["z"], 60_000)
    assert store.add([], 60_000)
    assert len(store) == 3


def test_memory_store_grows_and_forgets_nothing() -> None:
    """Tens of thousands of requests (the table is rehashed several times on the way): every
    nonce and every message id is still refused afterwards."""
    store = vpseal.MemoryNonceStore()
    guard = vpseal.ReplayGuard(store=store)
    nonces = [fresh_nonce() for _ in range(30_000)]
    for i, nonce in enumerate(nonces):
        guard.check(AGENT, NOW, nonce, message_id=f"message-{i}", now=NOW)
    assert len(store) == 60_000
    for i in range(0, 30_000, 37):
        with pytest.raises(vpseal.ReplayError):
            guard.check(AGENT, NOW, nonces[i], now=NOW)
        with pytest.raises(vpseal.ReplayError):
            guard.check(AGENT, NOW, fresh_nonce(), message_id=f"message-{i}", now=NOW)
        guard.check(OTHER_AGENT, NOW, nonces[i], message_id=f"message-{i}", now=NOW)
    keys = [f"key-{i}" for i in range(20_000)]
    assert all(store.add([key], 60_000) for key in keys)
    assert not any(store.add([key], 60_000) for key in keys)


def test_memory_store_older_generation_still_refuses() -> None:
    """A generation lasts as long as the longest ttl it saw; a finished one is kept, read-only,
    until everything in it has expired, and is still consulted meanwhile."""
    store = vpseal.MemoryNonceStore()
    assert store.add(["a"], 1_000)  # a generation of 1 s starts here
    time.sleep(0.6)
    assert store.add(["b"], 1_000)  # b expires about 1.6 s from the start
    time.sleep(0.5)
    assert store.add(["c"], 1_000)  # a new generation; the first is kept for b
    assert not store.add(["b"], 1_000)
    assert not store.add(["c"], 1_000)
    assert not store.add(["x", "b"], 1_000)
    assert store.add(["x"], 1_000)
    time.sleep(2.2)  # everything has expired: both tables are dropped
    assert len(store) == 0
    assert store.add(["a", "b", "c", "x"], 1_000)


def test_check_and_open_share_the_message_id(backend: str) -> None:
    """ReplayGuard.check(message_id=...) and open_request record the same message id (the
    wire string's first 40 characters), so either one refuses what the other recorded."""
    c = creds(backend)
    guard = vpseal.ReplayGuard()
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW)
    assert _open(c, sealed, guard=guard, now_ms=NOW).payload == PAYLOAD
    with pytest.raises(vpseal.ReplayError):
        guard.check(AGENT, NOW, fresh_nonce(), message_id=wire_of(sealed.body)[:40], now=NOW)
    other = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW)
    guard.check(AGENT, NOW, fresh_nonce(), message_id=wire_of(other.body)[:40], now=NOW)
    assert_error(_open(c, other, guard=guard, now_ms=NOW), vpseal.ReplayError, 83)


# -- MemoryNonceStore --------------------------------------------------------------------------


def test_memory_store_expiry() -> None:
    store = vpseal.MemoryNonceStore()
    assert store.add(["k"], 400)
    assert not store.add(["k"], 400)
    assert len(store) == 1
    time.sleep(0.6)
    assert store.add(["k"], 400)
    assert not store.add(["k"], 400)


def test_memory_store_len_shrinks() -> None:
    store = vpseal.MemoryNonceStore()
    for i in range(500):
        assert store.add([f"k{i}"], 400)
    assert len(store) == 500
    time.sleep(0.6)
    assert store.add(["fresh"], 10_000)
    assert len(store) == 1
    assert store.add(["k1"], 10_000)  # expired keys are free again
    assert len(store) == 2


def test_memory_store_all_or_nothing() -> None:
    store = vpseal.MemoryNonceStore()
    assert store.add(["a", "b"], 10_000)
    assert not store.add(["b", "c"], 10_000)
    assert len(store) == 2
    assert store.add(["c"], 10_000)  # c was not recorded by the failed add
    assert not store.add(["a"], 10_000)
    assert store.add([], 10_000)


def test_memory_store_threads_one_winner() -> None:
    store = vpseal.MemoryNonceStore()
    n_threads, rounds = 16, 40
    wins = [[0] * n_threads for _ in range(rounds)]
    barrier = threading.Barrier(n_threads, timeout=60)

    def worker(t: int) -> None:
        for r in range(rounds):
            barrier.wait()
            if store.add([f"round-{r}"], 60_000):
                wins[r][t] += 1

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [sum(row) for row in wins] == [1] * rounds
    assert len(store) == rounds


def test_memory_store_threads_distinct_keys() -> None:
    store = vpseal.MemoryNonceStore()
    failures: list[str] = []

    def worker(t: int) -> None:
        for i in range(2_000):
            if not store.add([f"{t}-{i}", f"m-{t}-{i}"], 60_000):
                failures.append(f"{t}-{i}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(store) == 8 * 2_000 * 2


# -- RedisNonceStore ----------------------------------------------------------------------------


@pytest.fixture
def redis_prefix() -> Any:
    """Call it inside the test: (url, client, fresh key prefix). Connecting there (not in the
    fixture) makes an unreachable configured server a test FAILURE, not a setup error; an
    unset VPSEAL_REDIS_URL skips. Keys under the prefix are deleted afterwards."""
    made: list[tuple[Any, str]] = []

    def connect() -> tuple[str, Any, str]:
        url = redis_url()
        client = redis_client(url)
        prefix = f"vpseal-test:{uuid.uuid4().hex}:"
        made.append((client, prefix))
        return url, client, prefix

    yield connect
    for client, prefix in made:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)


@pytest.mark.redis
def test_redis_store_basic_and_px_expiry(redis_prefix: Any) -> None:
    url, client, prefix = redis_prefix()
    store = vpseal.RedisNonceStore(url=url, prefix=prefix)
    assert prefix in repr(store)
    assert store.add(["k"], 400)
    assert not store.add(["k"], 400)
    pttl = client.pttl(prefix + "k")
    assert 0 < pttl <= 400
    time.sleep(0.6)
    assert client.exists(prefix + "k") == 0
    assert store.add(["k"], 400)


@pytest.mark.redis
def test_redis_store_all_or_nothing(redis_prefix: Any) -> None:
    _url, client, prefix = redis_prefix()
    store = vpseal.RedisNonceStore(client=client, prefix=prefix)
    assert store.add(["a", "b"], 60_000)
    assert not store.add(["b", "c"], 60_000)
    assert client.exists(prefix + "c") == 0
    assert store.add(["c"], 60_000)


@pytest.mark.redis
def test_redis_guard_ttl_is_rest_of_window(redis_prefix: Any) -> None:
    url, client, prefix = redis_prefix()
    c = creds(None)
    store = vpseal.RedisNonceStore(url=url, prefix=prefix)
    guard = vpseal.ReplayGuard(window_ms=WINDOW, store=store)
    sealed = vpseal.seal_request(c, PAYLOAD, timestamp_ms=NOW - WINDOW + 800)
    assert _open(c, sealed, guard=guard, now_ms=NOW).payload == PAYLOAD
    keys = list(client.scan_iter(match=prefix + "*"))
    assert len(keys) == 2  # nonce + message id
    for key in keys:
        assert 0 < client.pttl(key) <= 801
    assert_error(_open(c, sealed, guard=guard, now_ms=NOW), vpseal.ReplayError, 83)
    time.sleep(1.0)
    assert list(client.scan_iter(match=prefix + "*")) == []
    # forgotten once the request would be stale anyway
    assert _open(c, sealed, guard=guard, now_ms=NOW).payload == PAYLOAD


@pytest.mark.redis
def test_redis_guard_shared_between_two_guards(redis_prefix: Any, backend: str) -> None:
    url, _client, prefix = redis_prefix()
    c = creds(backend)
    one = vpseal.ReplayGuard(store=vpseal.RedisNonceStore(url=url, prefix=prefix))
    two = vpseal.ReplayGuard(store=vpseal.RedisNonceStore(url=url, prefix=prefix))
    sealed = vpseal.seal_request(c, PAYLOAD)
    assert _open(c, sealed, guard=one).payload == PAYLOAD
    assert_error(_open(c, sealed, guard=two), vpseal.ReplayError, 83)


def _race(url: str, prefix: str, backend: str, scheme: str, n: int) -> list[dict[str, Any]]:
    c = creds(backend, scheme)
    requests = []
    for i in range(n):
        sealed = vpseal.seal_request(c, {"i": i})
        body = base64.b64encode(sealed.body).decode()
        requests.append({"headers": sealed.headers, "body": body})
    helpers_dir = str(Path(__file__).resolve().parent)
    code = f"import sys; sys.path.insert(0, {helpers_dir!r}); import _envelope_helpers as h; "
    code += "h.redis_race_worker()"
    procs = []
    start_at = time.time() + 1.5  # every worker has started (and imported vpseal) by then
    for reverse in (False, False, True):
        job = {
            "agent": AGENT,
            "key": KEY_HEX,
            "scheme": scheme,
            "backend": backend,
            "url": url,
            "prefix": prefix,
            "requests": requests,
            "reverse": reverse,
            "start_at": start_at,
        }
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(job) + "\n")
        proc.stdin.close()
        proc.stdin = None  # communicate() below must not touch the closed pipe
        procs.append(proc)
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, out
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outputs


@pytest.mark.redis
def test_redis_processes_race_each_nonce_once(redis_prefix: Any, backend: str) -> None:
    """Three processes share one Redis store and open the same 300 requests at once (two in
    the same order, one in reverse): every request is accepted exactly once among them."""
    url, _client, prefix = redis_prefix()
    n = 300
    outputs = _race(url, prefix, backend, "transfer", n)
    accepted = [i for out in outputs for i in out["accepted"]]
    assert sorted(accepted) == list(range(n))  # each exactly once
    for out in outputs:
        assert out["other"] == []
        assert sorted(out["accepted"] + out["replayed"]) == list(range(n))


def test_unreachable_redis_store_refuses_with_a_vpseal_error(backend: str) -> None:
    """A store that cannot be consulted fails closed: NonceStoreError (code 7), no secret."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(
        "redis://:hunter2-password@127.0.0.1:1/0", socket_connect_timeout=0.5
    )
    guard = vpseal.ReplayGuard(store=vpseal.RedisNonceStore(client))
    c = creds(backend)
    sealed = vpseal.seal_request(c, {"username": "player001", "transId": "T-1"})
    with pytest.raises(vpseal.NonceStoreError) as info:
        vpseal.open_request(c, sealed.headers, sealed.body, guard=guard)
    assert info.value.api_code == 7
    assert isinstance(info.value, vpseal.VPSealError)
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value)


@pytest.mark.redis
def test_redis_bad_tag_does_not_burn_the_nonce(redis_prefix: Any, backend: str) -> None:
    """With a shared Redis store too, nothing is written for a request whose tag fails."""
    url, client, prefix = redis_prefix()
    c = creds(backend)
    guard = vpseal.ReplayGuard(store=vpseal.RedisNonceStore(url=url, prefix=prefix))
    sealed = vpseal.seal_request(c, PAYLOAD)
    for respell in (False, True):
        forged = _forged(sealed, "transfer", respell=respell)
        assert_error(_open(c, forged, guard=guard), vpseal.DecryptionError, 84)
        assert_error(vpseal.open_many(c, [forged], guard=guard)[0], vpseal.DecryptionError, 84)
    assert list(client.scan_iter(match=prefix + "*")) == []
    assert _open(c, sealed, guard=guard).payload == PAYLOAD
    # SCAN may return a key more than once (while Redis rehashes): count distinct keys
    assert len(set(client.scan_iter(match=prefix + "*"))) == 2
    assert_error(_open(c, sealed, guard=guard), vpseal.ReplayError, 83)


@pytest.mark.redis
def test_redis_guard_shared_by_threads(redis_prefix: Any, backend: str) -> None:
    """8 threads open the same request through Redis at once: exactly one gets it (the
    record, made after the tag verified, is still one atomic check-and-set)."""
    url, _client, prefix = redis_prefix()
    c = creds(backend)
    for _ in range(10):
        guard = vpseal.ReplayGuard(store=vpseal.RedisNonceStore(url=url, prefix=prefix))
        sealed = vpseal.seal_request(c, PAYLOAD)
        barrier = threading.Barrier(8, timeout=60)
        results: list[Any] = []

        def worker(
            sealed: Any = sealed, guard: Any = guard, barrier: Any = barrier, out: Any = results
        ) -> None:
            barrier.wait()
            out.append(_open(c, sealed, guard=guard))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(isinstance(r, vpseal.OpenedRequest) for r in results) == 1
        for r in results:
            if not isinstance(r, vpseal.OpenedRequest):
                assert_error(r, vpseal.ReplayError, 83)
