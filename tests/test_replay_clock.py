"""The replay store's time edges, on an injected clock (MemoryNonceStore(clock=...)).

Exact edges, no sleeping: an entry is refused for exactly its ttl and accepted again at the
first nanosecond after it; a generation that may still hold live entries is kept (at most
about two ttls); a full store accepts again once the old generation has expired; the guard's
window (window_ms=1 included) and the ttl it gives the store meet exactly at the window's edge,
on the fast path (a message id: one call into the store) and the slow one (check without one,
a store subclass, any other store).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from vpseal.errors import NonceStoreFull, ReplayError
from vpseal.replay import MemoryNonceStore, ReplayGuard

MS = 1_000_000  # ns


class Clock:
    """A clock that only moves when told to (nanoseconds)."""

    def __init__(self, ns: int = 1_700_000_000_000 * MS) -> None:
        self.ns = ns
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.ns

    def at_ms(self, ms: int) -> Clock:
        self.ns = ms * MS
        return self


T0 = 1_700_000_000_000  # ms


def _store(clock: Clock, max_entries: int = 1000) -> MemoryNonceStore:
    return MemoryNonceStore(max_entries, clock=clock)


def test_the_clock_is_the_one_read() -> None:
    clock = Clock()
    store = _store(clock)
    assert store.add(["k"], 10) and clock.reads == 1
    assert len(store) == 1 and clock.reads == 2


def test_clock_must_be_callable() -> None:
    with pytest.raises(TypeError, match="clock"):
        MemoryNonceStore(clock=123)  # type: ignore[arg-type]


def test_an_entry_is_refused_for_exactly_its_ttl() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock)
    assert store.add(["k"], 10)
    clock.ns = (T0 + 10) * MS - 1
    assert not store.add(["k"], 10)
    clock.ns = (T0 + 10) * MS
    assert store.add(["k"], 10)
    assert len(store) == 1


def test_len_drops_an_expired_generation() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock)
    assert store.add(["a", "b", "c"], 10)
    assert len(store) == 3
    clock.ns = (T0 + 10) * MS - 1
    assert len(store) == 3
    clock.at_ms(T0 + 10)
    assert len(store) == 0  # memory bounded by one window: nothing left


def test_a_later_entry_keeps_its_generation_for_its_own_ttl() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock)
    assert store.add(["a"], 10)
    clock.at_ms(T0 + 5)
    assert store.add(["b"], 10)  # expires at T0 + 15
    clock.at_ms(T0 + 10)  # the generation ends; "b" is still live: its table is kept
    assert not store.add(["b"], 10)
    assert not store.add(["a"], 10)  # held longer than its ttl, never shorter
    assert len(store) == 2
    clock.ns = (T0 + 20) * MS - 1  # the next generation ends at T0 + 20
    assert not store.add(["b"], 10)
    clock.at_ms(T0 + 20)
    assert len(store) == 0
    assert store.add(["a", "b"], 10)


def test_the_longest_ttl_of_a_generation_sets_the_next_ones_length() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock)
    assert store.add(["short"], 5)
    assert store.add(["long"], 50)
    clock.at_ms(T0 + 49)  # the generation ended at T0 + 5; "long" keeps its table
    assert not store.add(["long"], 5)
    clock.ns = (T0 + 49 + 50) * MS - 1  # the next one lasts the longest ttl seen: 50 ms
    assert not store.add(["long"], 5)
    clock.at_ms(T0 + 99)
    assert store.add(["long"], 5)


@pytest.mark.parametrize("ttl", [0, -5, 1])
def test_a_ttl_below_one_ms_is_one_ms(ttl: int) -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock)
    assert store.add(["k"], ttl)
    clock.ns = (T0 + 1) * MS - 1
    assert not store.add(["k"], ttl)
    clock.at_ms(T0 + 1)
    assert store.add(["k"], ttl)


def test_a_clock_that_goes_back_forgets_nothing_early() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock)
    assert store.add(["a"], 10)
    clock.at_ms(T0 + 9)
    assert store.add(["b"], 10)  # live until T0 + 19
    clock.at_ms(T0 + 10)
    assert not store.add(["b"], 10)
    clock.at_ms(T0 - 1000)  # back in time
    assert not store.add(["a"], 10) and not store.add(["b"], 10)
    clock.at_ms(T0 + 10)
    assert not store.add(["b"], 10)


def test_a_full_store_accepts_again_once_the_old_generation_has_expired() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock, max_entries=2)
    assert store.add(["a", "b"], 10)
    clock.at_ms(T0 + 5)
    with pytest.raises(NonceStoreFull):
        store.add(["c"], 10)
    assert len(store) == 2  # the refused key was not recorded
    clock.at_ms(T0 + 10)
    assert store.add(["c"], 10)
    assert not store.add(["c"], 10)


def test_max_entries_is_exact() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock, max_entries=3)
    assert store.add(["a", "b"], 10)
    assert store.add(["c"], 10)  # exactly max_entries
    with pytest.raises(NonceStoreFull):
        store.add(["d"], 10)
    with pytest.raises(NonceStoreFull):
        _store(Clock(), max_entries=1).add(["x", "y"], 10)


def test_a_full_store_with_a_live_old_generation_stays_full_until_it_expires() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock, max_entries=2)
    assert store.add(["a"], 10)
    clock.at_ms(T0 + 8)
    assert store.add(["b"], 10)  # live until T0 + 18
    clock.at_ms(T0 + 10)  # rotation keeps the old table (b is live)
    with pytest.raises(NonceStoreFull):
        store.add(["c"], 10)
    clock.ns = (T0 + 18) * MS - 1
    with pytest.raises(NonceStoreFull):
        store.add(["c"], 10)
    clock.at_ms(T0 + 18)  # the old table has expired: dropped to make room
    assert store.add(["c"], 10)
    assert store.add(["b"], 10)


def test_duplicate_keys_in_one_add_count_once() -> None:
    store = _store(Clock(), max_entries=1)
    assert store.add(["k", "k"], 10)
    assert len(store) == 1


def test_growth_keeps_every_key() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock)
    keys = [f"k{i}" for i in range(900)]  # several rehashes of the 1024-slot table
    for key in keys:
        assert store.add([key], 10)
    assert len(store) == 900
    assert not any(store.add([key], 10) for key in keys)


# ------------------------------------------------------------------------------ the guard


class SpyStore(MemoryNonceStore):
    """A subclass: the guard must go through its add() (the slow path)."""

    __slots__ = ("calls",)

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.calls: list[tuple[list[str], int]] = []

    def add(self, keys: Sequence[str], ttl_ms: int) -> bool:
        self.calls.append((list(keys), ttl_ms))
        return super().add(keys, ttl_ms)


MESSAGE = "I" * 16 + "T" * 24  # 40 characters: base64(iv) + base64(tag)


def _check(guard: ReplayGuard, ts: int, nonce: str, fast: bool) -> None:
    if fast:
        guard.check("agent", ts, nonce, message_id=MESSAGE + nonce)
    else:
        guard.check("agent", ts, nonce)


@pytest.mark.parametrize("fast", [True, False], ids=["message-id", "nonce-only"])
@pytest.mark.parametrize("age", [-2, -1, 0, 1, 2])
def test_window_of_one_ms_on_the_store_clock(fast: bool, age: int) -> None:
    clock = Clock().at_ms(T0 + age)
    guard = ReplayGuard(window_ms=1, store=_store(clock))
    if abs(age) > 1:
        with pytest.raises(ReplayError, match="outside"):
            _check(guard, T0, "n", fast)
        assert len(guard.store) == 0  # type: ignore[arg-type]
    else:
        _check(guard, T0, "n", fast)
        with pytest.raises(ReplayError, match="already"):
            _check(guard, T0, "n", fast)


@pytest.mark.parametrize("fast", [True, False], ids=["message-id", "nonce-only"])
@pytest.mark.parametrize("window", [1, 2, 300_000])
def test_a_nonce_is_remembered_until_its_timestamp_leaves_the_window(
    fast: bool, window: int
) -> None:
    """Recorded at the earliest moment its timestamp is accepted (timestamp - window), the
    nonce must still be refused at the latest one (timestamp + window): ttl = 2 window + 1."""
    clock = Clock().at_ms(T0 - window)
    guard = ReplayGuard(window_ms=window, store=_store(clock))
    _check(guard, T0, "n", fast)
    clock.at_ms(T0 + window)
    with pytest.raises(ReplayError, match="already"):
        _check(guard, T0, "n", fast)
    clock.at_ms(T0 + window + 1)
    with pytest.raises(ReplayError, match="outside"):
        _check(guard, T0, "n", fast)


def test_the_ttl_given_to_the_store_is_the_rest_of_the_window_plus_one() -> None:
    clock = Clock().at_ms(T0 + 3)
    store = SpyStore(clock)
    guard = ReplayGuard(window_ms=10, store=store)
    guard.check("agent", T0, "n1")
    guard.check("agent", T0, "n2", message_id=MESSAGE)
    assert [ttl for _, ttl in store.calls] == [8, 8]
    assert store.calls[1][0] == ["agent\x1fn\x1fn2", "agent\x1fm\x1f" + MESSAGE]


def test_a_memory_store_is_used_directly_a_subclass_through_add(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path (exactly a MemoryNonceStore) records without calling add(); a subclass,
    which may redefine add, always gets the call."""
    clock = Clock().at_ms(T0)
    spy = SpyStore(clock)
    ReplayGuard(store=spy).check("agent", T0, "n", message_id=MESSAGE)
    assert len(spy.calls) == 1

    def refuse(self: MemoryNonceStore, keys: Sequence[str], ttl_ms: int) -> bool:
        raise AssertionError("the fast path must not call add()")

    monkeypatch.setattr(MemoryNonceStore, "add", refuse)
    store = _store(clock)
    guard = ReplayGuard(store=store)
    guard.check("agent", T0, "n", message_id=MESSAGE)
    assert len(store) == 2  # its nonce and its message id
    with pytest.raises(ReplayError, match="already"):
        guard.check("agent", T0, "other", message_id=MESSAGE)  # the same message, new nonce


def test_the_fast_path_reads_the_clock_once() -> None:
    clock = Clock().at_ms(T0)
    guard = ReplayGuard(store=_store(clock))
    guard.check("agent", T0, "n", message_id=MESSAGE)
    assert clock.reads == 1


def test_now_moves_the_window_not_the_store_clock() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock)
    guard = ReplayGuard(window_ms=10, store=store)
    guard.check("agent", 5, "n", now=10, message_id=MESSAGE)  # window on now=, ttl 6 ms
    clock.ns = (T0 + 6) * MS - 1
    with pytest.raises(ReplayError, match="already"):
        guard.check("agent", 5, "n", now=10, message_id=MESSAGE + "x")
    clock.at_ms(T0 + 6)
    guard.check("agent", 5, "n", now=10, message_id=MESSAGE)


@pytest.mark.parametrize("fast", [True, False], ids=["message-id", "nonce-only"])
def test_the_guard_consults_the_previous_generation(fast: bool) -> None:
    """A request recorded in a generation that has since ended is still refused while its
    timestamp is inside the window: the previous table is searched too (nonce and message)."""
    clock = Clock().at_ms(T0)
    guard = ReplayGuard(window_ms=10, store=_store(clock))
    _check(guard, T0, "n1", fast)  # the generation lasts 11 ms
    clock.at_ms(T0 + 5)
    _check(guard, T0 + 5, "n2", fast)  # live until T0 + 16
    clock.at_ms(T0 + 12)  # a new generation; the old table is kept
    _check(guard, T0 + 12, "n3", fast)
    with pytest.raises(ReplayError, match="already"):
        _check(guard, T0 + 5, "n2", fast)
    if fast:  # the same message under a fresh nonce, the same nonce with another message
        with pytest.raises(ReplayError, match="already"):
            guard.check("agent", T0 + 5, "fresh", message_id=MESSAGE + "n2")
        with pytest.raises(ReplayError, match="already"):
            guard.check("agent", T0 + 5, "n2", message_id="another message id")
    _check(guard, T0 + 5, "n4", fast)  # anything else still goes in


def test_the_first_table_grows_past_a_third_full() -> None:
    """1024 slots, kept at most a third full: the 341st entry fits, the 342nd doubles it."""
    clock = Clock().at_ms(T0)
    store = _store(clock)
    assert store.add(["first"], 10)
    assert store._mask == 1023  # never below _MIN_SLOTS
    assert store.add([f"k{i}" for i in range(340)], 10)
    assert store._mask == 1023
    assert store.add(["one more"], 10)
    assert store._mask == 2047 and len(store) == 342


class FakeRedis:
    """Just what RedisNonceStore uses: register_script, and the script's call."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[list[str], list[int]]] = []
        self.fail = fail
        self.seen: set[str] = set()

    def register_script(self, source: str) -> Any:
        assert "SET" in source and "PX" in source

        def script(keys: list[str], args: list[int]) -> int:
            if self.fail:
                raise ConnectionError("redis://:password@host")
            self.calls.append((keys, args))
            if self.seen & set(keys):
                return 0
            self.seen.update(keys)
            return 1

        return script


def test_the_redis_store_prefixes_keys_and_sends_the_ttl() -> None:
    from vpseal.replay import RedisNonceStore

    fake = FakeRedis()
    store = RedisNonceStore(fake, prefix="p:")
    assert store.add(["a", "b"], 10) is True
    assert store.add(["b"], 0) is False
    assert store.add(["c"], -3.7) is True  # type: ignore[arg-type]
    assert fake.calls == [(["p:a", "p:b"], [10]), (["p:b"], [1]), (["p:c"], [1])]
    assert repr(store) == "RedisNonceStore(prefix='p:')"


def test_a_failing_redis_store_refuses_without_leaking_its_url() -> None:
    from vpseal.errors import NonceStoreError
    from vpseal.replay import RedisNonceStore

    store = RedisNonceStore(FakeRedis(fail=True))
    with pytest.raises(NonceStoreError) as info:
        store.add(["a"], 10)
    assert "ConnectionError" in str(info.value) and "password" not in str(info.value)


def test_a_ttl_below_one_ms_still_holds_an_entry_one_ms() -> None:
    clock = Clock().at_ms(T0)
    store = _store(clock)
    assert store.add(["first"], 0)
    clock.ns = T0 * MS + MS // 2
    assert store.add(["k"], 0)  # held until T0 + 1.5 ms
    clock.at_ms(T0 + 1)  # the generation ends
    assert not store.add(["k"], 0)
    clock.ns = (T0 + 1) * MS + MS // 2
    assert not store.add(["k"], 0)


def test_a_new_generation_is_sized_for_the_last_ones_traffic() -> None:
    from vpseal.replay import _table_size

    clock = Clock().at_ms(T0)
    store = _store(clock, max_entries=10_000)
    assert store.add([f"k{i}" for i in range(2000)], 10)
    clock.at_ms(T0 + 10)
    assert store.add(["next"], 10)
    assert store._mask + 1 == _table_size(2000) == 8192


@pytest.mark.parametrize("fast", [True, False], ids=["message-id", "nonce-only"])
def test_probing_past_occupied_slots_in_both_generations(fast: bool) -> None:
    """Tables a third full: many lookups land on an occupied slot and must probe on, in the
    current table and in the previous one (a probe that stopped moving would never end)."""
    clock = Clock().at_ms(T0)
    store = _store(clock, max_entries=100_000)
    guard = ReplayGuard(window_ms=10, store=store)
    _check(guard, T0, "first", fast)  # the generation ends at T0 + 11
    clock.at_ms(T0 + 5)
    for i in range(330):
        _check(guard, T0 + 5, f"a{i}", fast)
    clock.at_ms(T0 + 11)  # a new generation; the old table (660 or 330 entries) is kept
    for i in range(330):
        _check(guard, T0 + 11, f"b{i}", fast)
    for i in range(0, 330, 7):
        with pytest.raises(ReplayError, match="already"):
            _check(guard, T0 + 5, f"a{i}", fast)
    if fast:  # each fingerprint alone, in the previous table: the nonce, then the message
        for i in range(330):
            with pytest.raises(ReplayError, match="already"):
                guard.check("agent", T0 + 5, f"a{i}", message_id=f"other message {i}")
            with pytest.raises(ReplayError, match="already"):
                guard.check("agent", T0 + 5, f"fresh{i}", message_id=MESSAGE + f"a{i}")
        with pytest.raises(ReplayError, match="already"):
            _check(guard, T0 + 11, f"b{i}", fast)


def test_message_id_and_now_are_keyword_only() -> None:
    guard = ReplayGuard(store=_store(Clock().at_ms(T0)))
    with pytest.raises(TypeError):
        guard.check("agent", T0, "n", MESSAGE)  # type: ignore[misc]


def test_the_fast_path_inserts_by_itself_up_to_the_exact_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two slots per request are written in place while the count stays within the store's
    check value; only the request that would pass it goes through _insert (which refuses it
    here: max_entries reached)."""
    calls: list[int] = []
    real = MemoryNonceStore._insert

    def spy(self: MemoryNonceStore, fingerprints: list[int], ttl: int, now: int) -> None:
        calls.append(len(fingerprints))
        real(self, fingerprints, ttl, now)

    monkeypatch.setattr(MemoryNonceStore, "_insert", spy)
    clock = Clock().at_ms(T0)
    guard = ReplayGuard(store=_store(clock, max_entries=10))
    for i in range(5):  # 10 entries: exactly max_entries
        guard.check("agent", T0, f"n{i}", message_id=f"{MESSAGE}{i}")
    assert calls == [] and len(guard.store) == 10  # type: ignore[arg-type]
    with pytest.raises(NonceStoreFull):
        guard.check("agent", T0, "n5", message_id=f"{MESSAGE}5")
    assert calls == [2]


def test_the_redis_stores_options_are_keyword_only() -> None:
    from vpseal.replay import RedisNonceStore

    with pytest.raises(TypeError):
        RedisNonceStore(FakeRedis(), "redis://127.0.0.1:1/0")  # type: ignore[misc]


def test_max_entries_counts_the_previous_generation_on_the_fast_path() -> None:
    clock = Clock().at_ms(T0)
    guard = ReplayGuard(window_ms=10, store=_store(clock, max_entries=10))
    for i in range(2):
        guard.check("agent", T0, f"a{i}", message_id=f"{MESSAGE}a{i}")
    clock.at_ms(T0 + 5)
    guard.check("agent", T0 + 5, "b", message_id=f"{MESSAGE}b")  # live until T0 + 16
    clock.at_ms(T0 + 11)  # the old table keeps its 6 entries
    for i in range(2):
        guard.check("agent", T0 + 11, f"c{i}", message_id=f"{MESSAGE}c{i}")
    assert len(guard.store) == 10  # type: ignore[arg-type]
    with pytest.raises(NonceStoreFull):
        guard.check("agent", T0 + 11, "d", message_id=f"{MESSAGE}d")
