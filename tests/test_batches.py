"""seal_many / open_many: the same results as single calls, errors in their own slots only,
several agents in one batch, and the replay guard applied inside a batch."""

from __future__ import annotations

from typing import Any

import pytest
from _envelope_helpers import (
    AGENT,
    AVAILABLE_BACKENDS,
    OTHER_AGENT,
    OTHER_KEY_HEX,
    PREFIX,
    SCHEMES,
    SUFFIX,
    WINDOW_ONLY,
    assert_error,
    creds,
    fresh_nonce,
    iv_of,
    now_ms,
    payloads,
    ref_signature,
    resign,
    wire_of,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import vpseal


@settings(max_examples=60)
@given(
    items=st.lists(payloads, max_size=12),
    seal_backend=st.sampled_from(AVAILABLE_BACKENDS),
    open_backend=st.sampled_from(AVAILABLE_BACKENDS),
    scheme=st.sampled_from(SCHEMES),
)
def test_open_many_of_seal_many_gives_payloads_back(
    items: list[dict[str, Any]], seal_backend: str, open_backend: str, scheme: str
) -> None:
    sealer, opener = creds(seal_backend, scheme), creds(open_backend, scheme)
    sealed = vpseal.seal_many(sealer, items)
    assert len(sealed) == len(items)
    opened = vpseal.open_many(opener, sealed, guard=WINDOW_ONLY)
    assert [o.payload for o in opened] == items  # type: ignore[union-attr]
    # and each equals what a single call gives
    for request, result in zip(sealed, opened, strict=True):
        single = vpseal.open_request(opener, request.headers, request.body, guard=WINDOW_ONLY)
        assert isinstance(result, vpseal.OpenedRequest)
        assert single == result
        assert (result.agent_id, result.nonce) == (AGENT, request.headers["x-nonce"])


def test_seal_many_matches_single_seals(backend: str, scheme: str) -> None:
    """Same headers shape and signatures as seal_request would make; one timestamp; fresh
    nonces and IVs; the bodies decrypt to the compact JSON."""
    c = creds(backend, scheme)
    items = [{"i": i, "name": "é" * i} for i in range(50)]
    before = now_ms()
    sealed = vpseal.seal_many(c, items)
    after = now_ms()
    single = vpseal.seal_request(c, items[0])
    assert len({s.headers["x-timestamp"] for s in sealed}) == 1
    assert before <= int(sealed[0].headers["x-timestamp"]) <= after
    assert len({s.headers["x-nonce"] for s in sealed}) == 50
    assert len({iv_of(s.body) for s in sealed}) == 50
    for s in sealed:
        assert set(s.headers) == set(single.headers)
        assert s.headers["Content-Type"] == "application/json"
        assert s.headers["x-agentid"] == AGENT
        h = s.headers
        want = ref_signature(AGENT, h["x-timestamp"], h["x-nonce"], s.body, scheme)
        assert h["x-signature"] == want
    # single-call sealed requests open in a batch, batch-sealed ones singly
    mixed = [single, *sealed]
    opened = vpseal.open_many(c, mixed, guard=WINDOW_ONLY)
    assert [o.payload for o in opened] == [items[0], *items]  # type: ignore[union-attr]
    assert (
        vpseal.open_request(c, sealed[7].headers, sealed[7].body, guard=WINDOW_ONLY).payload
        == items[7]
    )


def test_empty_batches(backend: str) -> None:
    c = creds(backend)
    assert vpseal.seal_many(c, []) == []
    assert vpseal.open_many(c, [], guard=WINDOW_ONLY) == []
    assert vpseal.open_many(c, iter([]), guard=WINDOW_ONLY) == []


def test_batch_accepts_bytes_generators_and_tuples(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    sealed = vpseal.seal_many(c, (p for p in [b'{"a":1.50}', {"b": [True]}]))
    pairs = ((s.headers, s.body) for s in sealed)
    opened = vpseal.open_many(c, pairs, guard=WINDOW_ONLY)
    assert [o.payload for o in opened] == [{"a": vpseal_decimal("1.50")}, {"b": [True]}]  # type: ignore[union-attr]


def vpseal_decimal(text: str) -> Any:
    from decimal import Decimal

    return Decimal(text)


def test_seal_many_bad_payload_raises(backend: str) -> None:
    c = creds(backend)
    for bad in ({"x": float("nan")}, b"", {"s": {1}}, None):
        with pytest.raises(vpseal.PayloadError):
            vpseal.seal_many(c, [{"ok": 1}, bad])


F11 = (vpseal.RequestFormatError, 11)


def _bad_and_good(c: vpseal.Credentials, scheme: str) -> tuple[list[Any], list[Any]]:
    """(requests, expected) where expected is a payload or (class, code)."""
    good = vpseal.seal_many(c, [{"slot": i} for i in range(12)])
    requests: list[Any] = []
    expected: list[Any] = []

    def add(request: Any, outcome: Any) -> None:
        requests.append(request)
        expected.append(outcome)

    add(good[0], {"slot": 0})
    h = dict(good[1].headers, **{"x-signature": "0" * 64})
    add((h, good[1].body), (vpseal.SignatureError, 83))
    add(good[2], {"slot": 2})
    h = dict(good[3].headers, **{"x-agentid": "nobody"})
    add((h, good[3].body), (vpseal.RequestFormatError, 11))
    add((dict(good[4].headers, **{"x-nonce": "XYZ"}), good[4].body), F11)
    add((good[5].headers, good[5].body[:-1]), (vpseal.RequestFormatError, 11))
    add(5, (vpseal.RequestFormatError, 11))  # not a (headers, body) pair
    add((good[6].headers,), (vpseal.RequestFormatError, 11))
    add((None, good[6].body), (vpseal.RequestFormatError, 11))
    add((good[6].headers, 42), (vpseal.RequestFormatError, 11))
    wire = wire_of(good[7].body)
    changed = wire[:-6] + ("B" if wire[-6] != "B" else "C") + wire[-5:]
    tampered = PREFIX + changed.encode() + SUFFIX
    add((resign(good[7].headers, tampered, scheme), tampered), (vpseal.DecryptionError, 84))
    spaced = b'{ "cipherText" : "' + wire_of(good[8].body).encode() + b'" }'
    add((resign(good[8].headers, spaced, scheme), spaced), {"slot": 8})  # slow path, fine
    not_json = vpseal.seal_request(c, b"not json")
    add(not_json, (vpseal.RequestFormatError, 11))
    array = vpseal.seal_request(c, b"[1,2]")
    add(array, (vpseal.RequestFormatError, 11))
    h = dict(good[9].headers, **{"X-Timestamp": good[9].headers["x-timestamp"]})
    del h["x-timestamp"]
    add((h, good[9].body), {"slot": 9})  # odd-case names
    add((dict(good[10].headers, **{"x-timestamp": "12a"}), good[10].body), F11)
    add(good[11], {"slot": 11})
    return requests, expected


def _check_slots(results: list[Any], expected: list[Any]) -> None:
    assert len(results) == len(expected)
    for i, (result, want) in enumerate(zip(results, expected, strict=True)):
        if isinstance(want, dict):
            assert isinstance(result, vpseal.OpenedRequest), (i, result)
            assert result.payload == want, i
        else:
            try:
                assert_error(result, *want)
            except AssertionError as exc:
                raise AssertionError(f"slot {i}: {exc}") from None


def test_bad_requests_only_spoil_their_slots(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    requests, expected = _bad_and_good(c, scheme)
    results = vpseal.open_many(c, requests, guard=WINDOW_ONLY)
    _check_slots(results, expected)
    # same verdicts one by one
    for request, result in zip(requests, results, strict=True):
        try:
            headers, body = request
            single: Any = vpseal.open_request(c, headers, body, guard=WINDOW_ONLY)
        except vpseal.VPSealError as exc:
            single = exc
        except (TypeError, ValueError):
            continue  # not a pair at all: only a batch has a slot to put that in
        if isinstance(single, vpseal.OpenedRequest):
            assert single == result
        else:
            assert type(single) is type(result)


def test_bad_requests_with_guard(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    requests, expected = _bad_and_good(c, scheme)
    _check_slots(vpseal.open_many(c, requests, guard=vpseal.ReplayGuard()), expected)


def test_keyring_several_agents_in_one_batch(backend: str) -> None:
    other_backend = "fallback" if backend == "native" else backend
    a = creds(backend, "transfer")
    b = creds(backend, "pipe", agent=OTHER_AGENT, key=OTHER_KEY_HEX)
    third = creds(other_backend, "transfer", agent="agent-3", key=bytes(range(32)))
    ring = vpseal.Keyring([a, b, third])
    sealed: list[Any] = []
    payloads_in: list[Any] = []
    for i in range(30):
        who = (a, b, third)[i % 3]
        payloads_in.append({"i": i, "who": who.agent_id})
        sealed.append(vpseal.seal_request(who, payloads_in[-1]))
    # one request of an agent that is not in the ring, in the middle
    stranger = creds(backend, agent="stranger")
    sealed.insert(13, vpseal.seal_request(stranger, {"i": "x"}))
    results = vpseal.open_many(ring, sealed, guard=WINDOW_ONLY)
    assert len(results) == 31
    assert_error(results.pop(13), vpseal.RequestFormatError, 11)
    for result, payload in zip(results, payloads_in, strict=True):
        assert isinstance(result, vpseal.OpenedRequest)
        assert result.payload == payload
        assert result.agent_id == payload["who"]
    # a batch sealed by seal_many per agent, interleaved
    batches = [vpseal.seal_many(c, [{"n": n, "who": c.agent_id} for n in range(5)]) for c in (a, b)]
    interleaved = [r for pair in zip(*batches, strict=True) for r in pair]
    results = vpseal.open_many(ring, interleaved, guard=WINDOW_ONLY)
    assert [r.payload["who"] for r in results] == [AGENT, OTHER_AGENT] * 5  # type: ignore[union-attr]
    assert [r.payload["n"] for r in results] == [n for n in range(5) for _ in (0, 1)]  # type: ignore[union-attr]


def test_guard_in_batch_duplicate_is_replay(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard()
    sealed = vpseal.seal_many(c, [{"i": i} for i in range(4)])
    batch = [sealed[0], sealed[1], sealed[0], sealed[2], sealed[1], sealed[0], sealed[3]]
    results = vpseal.open_many(c, batch, guard=guard)
    kinds = [type(r).__name__ for r in results]
    assert kinds == [
        "OpenedRequest",
        "OpenedRequest",
        "ReplayError",
        "OpenedRequest",
        "ReplayError",
        "ReplayError",
        "OpenedRequest",
    ]
    for r in results:
        if isinstance(r, vpseal.VPSealError):
            assert_error(r, vpseal.ReplayError, 83)
    # the guard remembers across batches and single calls
    again = vpseal.open_many(c, [sealed[3]], guard=guard)
    assert_error(again[0], vpseal.ReplayError, 83)
    result: Any
    try:
        result = vpseal.open_request(c, sealed[2].headers, sealed[2].body, guard=guard)
    except vpseal.VPSealError as exc:
        result = exc
    assert_error(result, vpseal.ReplayError, 83)


def test_guard_in_batch_captured_body_with_fresh_headers(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    guard = vpseal.ReplayGuard()
    sealed = vpseal.seal_request(c, {"a": 1})
    copy = resign(sealed.headers, sealed.body, scheme, x_nonce=fresh_nonce())
    results = vpseal.open_many(c, [sealed, (copy, sealed.body)], guard=guard)
    assert isinstance(results[0], vpseal.OpenedRequest)
    assert_error(results[1], vpseal.ReplayError, 83)


def test_guard_in_batch_window(backend: str) -> None:
    c = creds(backend)
    now = 1_769_746_894_501
    guard = vpseal.ReplayGuard(window_ms=1_000)
    ok = vpseal.seal_request(c, {"a": 1}, timestamp_ms=now - 1_000)
    stale = vpseal.seal_request(c, {"a": 2}, timestamp_ms=now - 1_001)
    future = vpseal.seal_request(c, {"a": 3}, timestamp_ms=now + 1_001)
    results = vpseal.open_many(c, [stale, ok, future], guard=guard, now_ms=now)
    assert_error(results[0], vpseal.ReplayError, 83)
    assert results[1].payload == {"a": 1}  # type: ignore[union-attr]
    assert_error(results[2], vpseal.ReplayError, 83)


def test_guard_in_batch_across_agents(backend: str) -> None:
    """The same nonce for two agents is fine; guard order follows the batch per agent."""
    a = creds(backend)
    b = creds(backend, agent=OTHER_AGENT, key=OTHER_KEY_HEX)
    ring = vpseal.Keyring([a, b])
    nonce = fresh_nonce()
    ra = vpseal.seal_request(a, {"w": "a"}, nonce=nonce)
    rb = vpseal.seal_request(b, {"w": "b"}, nonce=nonce)
    results = vpseal.open_many(ring, [ra, rb, rb, ra], guard=vpseal.ReplayGuard())
    assert [type(r).__name__ for r in results] == [
        "OpenedRequest",
        "OpenedRequest",
        "ReplayError",
        "ReplayError",
    ]
    assert [r.payload["w"] for r in results[:2]] == ["a", "b"]  # type: ignore[union-attr]


def test_large_batch(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    items = [{"i": i, "blob": "x" * (i % 7000)} for i in range(600)]
    opened = vpseal.open_many(c, vpseal.seal_many(c, items), guard=WINDOW_ONLY)
    assert [o.payload for o in opened] == items  # type: ignore[union-attr]


def test_keyring_batch_of_many_agents_is_one_engine_call(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway's batch mixes agents: still one crossing into the engine for all of them."""
    ring = vpseal.Keyring(
        vpseal.Credentials(f"agent{i}", bytes([i]) * 32, scheme, backend=backend)
        for i, scheme in enumerate(("transfer", "pipe", "transfer"), start=1)
    )
    requests = [vpseal.seal_request(ring[f"agent{1 + i % 3}"], {"n": i}) for i in range(12)]
    engine_class = type(ring["agent1"]._engine)
    calls: list[int] = []
    original = engine_class.open_batch

    def counting(items: Any) -> Any:
        calls.append(len(items))
        return original(items)

    monkeypatch.setattr(engine_class, "open_batch", staticmethod(counting))
    opened = vpseal.open_many(ring, requests, guard=WINDOW_ONLY)
    assert calls == [12]
    assert [o.payload for o in opened] == [{"n": i} for i in range(12)]  # type: ignore[union-attr]
    assert [o.agent_id for o in opened] == [f"agent{1 + i % 3}" for i in range(12)]  # type: ignore[union-attr]
