"""Replay protection: a timestamp window plus a store of requests already seen.

The signature has no secret in it (SPEC.md section 4), so anyone who captured a request can give
it a fresh nonce, timestamp and signature. The guard therefore also remembers each message's
GCM IV and tag (the first 40 characters of the wire string), which nobody can forge without the
key: within the window, a captured body is refused however its headers were rewritten.

For the same reason a request is recorded only once its GCM tag has verified: the window may be
checked first, but recording a nonce that came with a bad tag would let anyone burn another
agent's nonces (or fill the store) with requests that never decrypt. ``open_request`` and
``open_many`` keep that order; code that calls ``ReplayGuard.check`` itself must do the same.

An entry lives until the request that created it could no longer pass the window check
(``timestamp + window``), so memory stays bounded by the traffic of one window.

``open_request`` and ``open_many`` always take a guard. A server that deliberately keeps no
record of nonces (say, a stateless test double) passes ``ReplayGuard.window_only()``: the
timestamp window is still enforced, only the nonce and message memory is left out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from vpseal._protocol import BODY_PREFIX
from vpseal.errors import NonceStoreError, NonceStoreFull, ReplayError

DEFAULT_WINDOW_MS = 300_000
# Two entries per request (its nonce and its message id), each held one to two windows: about
# 3,000 requests/s sustained at the default window, in at most about 130 MB.
DEFAULT_MAX_ENTRIES = 4_000_000

_time_ns = time.time_ns
_MESSAGE_ID_CHARS = 40  # base64(iv) + base64(tag) at the start of the wire string
_MESSAGE_ID_START = len(BODY_PREFIX)  # where the wire string starts in a canonical body
_OUTSIDE_WINDOW = "request timestamp is outside the accepted window"
_SEEN = "request was already received (nonce or message seen before)"


def now_ms() -> int:
    """Unix time in milliseconds (the x-timestamp unit)."""
    return time.time_ns() // 1_000_000


class NonceStore(Protocol):
    """Where seen nonces live. ``add`` is atomic and all-or-nothing."""

    def add(self, keys: Sequence[str], ttl_ms: int) -> bool:
        """Record every key for ttl_ms; False (recording nothing) if any key is present."""


# -- the in-memory store -----------------------------------------------------------------------

# Entries are 64-bit fingerprints: Python's hash() of the key (SipHash, keyed per process), or
# 1 for a hash of 0, which marks an empty slot. They are kept as raw signed 8-byte slots (hash
# values fit exactly), so no Python object is kept per entry.
_MIN_SLOTS = 1 << 10


def _zeros(size: int) -> memoryview:
    """A table of size empty slots: int64 items of a zeroed bytearray (a memoryview reads and
    writes them faster than an array.array does)."""
    return memoryview(bytearray(8 * size)).cast("q")


def _table_size(entries: int) -> int:
    """Slots for a generation expected to take ``entries``: a power of two, at most a third
    full (linear probing stays short), never below _MIN_SLOTS."""
    return max(_MIN_SLOTS, 1 << (3 * entries).bit_length())


class MemoryNonceStore:
    """A thread-safe in-process store whose size is bounded by ``max_entries``.

    Each entry costs 8 bytes in an open-addressing table kept at most a third full (a hash
    table of Python objects costs several times that). Entries are remembered by a 64-bit keyed
    fingerprint of the key (its hash()): two different keys share one with a chance of about
    ``len(store) / 2**64``, and the later of the two is then refused (never accepted twice).

    Expiry works by generations. New entries go to the current table; a generation lasts as
    long as the longest ttl it has been given, after which its table is kept, read-only, until
    everything in it has expired, then dropped whole (no per-entry work). So an entry is held
    for at least its ttl and at most about twice it, and a lookup consults at most two tables.
    While traffic outgrows the previous generation's, the current table is rehashed into one
    twice its size: a pause proportional to its entries.

    Time is the wall clock (time.time_ns), the clock the guard checks the window by: an entry
    only matters while its request's timestamp is inside the window, so a clock that jumps
    forward drops entries the window would refuse anyway, and one that jumps back keeps them
    longer. (``now_ms=`` of open_request moves the window, not this clock.) ``clock=``
    replaces it (a function returning nanoseconds, like time.time_ns), e.g. for tests of
    expiry; a guard that uses this store checks its window by the same clock.

    When ``max_entries`` are held, ``add`` raises NonceStoreFull (a NonceStoreError, API code
    7): the store refuses new requests rather than grow without bound or forget a nonce
    early, and accepts them again once the previous generation has been dropped.
    """

    __slots__ = (
        "_check",
        "_clock",
        "_count",
        "_last",
        "_limit",
        "_lock",
        "_mask",
        "_max",
        "_old",
        "_old_count",
        "_old_expires",
        "_old_mask",
        "_rotate_at",
        "_slots",
        "_ttl",
    )

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, *, clock: Callable[[], int] = time.time_ns
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError("max_entries must be a positive int")
        if not callable(clock):
            raise TypeError("clock must be a function returning nanoseconds (like time.time_ns)")
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        # the current generation's table: 8-byte slots, 0 = empty, rehashed a third full
        self._slots = _zeros(_MIN_SLOTS)
        self._mask = _MIN_SLOTS - 1
        self._limit = _MIN_SLOTS // 3
        self._count = 0  # entries in it
        self._ttl = 0  # the longest ttl (ms) given in this generation
        self._last = 0  # clock (ns) of the latest entry added to it
        self._rotate_at = 0  # clock (ns) at which this generation ends
        # the previous generation's table, read-only, or None
        self._old: memoryview | None = None
        self._old_mask = 0
        self._old_count = 0
        self._old_expires = 0  # clock (ns) by which all its entries have expired
        self._check = 0  # an add that takes the count above this one goes the slow way
        self._update_check()

    @property
    def max_entries(self) -> int:
        return self._max

    def __repr__(self) -> str:
        return f"MemoryNonceStore(max_entries={self._max})"

    def __len__(self) -> int:
        """Entries held; an entry may be held (and still refuse its key) up to one generation
        after its ttl has run out."""
        now = self._clock()
        with self._lock:
            if now >= self._rotate_at:
                self._rotate(now, 1)
            return self._old_count + self._count

    def add(self, keys: Sequence[str], ttl_ms: int) -> bool:
        fingerprints = [hash(key) or 1 for key in keys]  # (str keys: apart from the guard's)
        return self._add(list(dict.fromkeys(fingerprints)), max(1, int(ttl_ms)))

    def _add(self, fingerprints: list[int], ttl: int) -> bool:
        """add() of distinct non-zero fingerprints."""
        now = self._clock()
        with self._lock:
            if now >= self._rotate_at:
                self._rotate(now, ttl)
            tables = [(self._slots, self._mask)]
            if self._old is not None:
                tables.append((self._old, self._old_mask))
            for slots, mask in tables:
                for key in fingerprints:
                    i = key & mask
                    value = slots[i]
                    while value:
                        if value == key:
                            return False
                        i = (i + 1) & mask
                        value = slots[i]
            self._insert(fingerprints, ttl, now)
            return True

    # -- under the lock --

    def _insert(self, fingerprints: list[int], ttl: int, now: int) -> None:
        """Record fingerprints known to be absent, making room first: drop the previous
        generation if it has expired, NonceStoreFull if they still do not fit, rehash if the
        table would be more than a third full."""
        count = self._count + len(fingerprints)
        if self._old_count + count > self._max:
            if self._old is not None and self._old_expires <= now:
                self._drop_old()
            if self._old_count + count > self._max:
                raise NonceStoreFull(
                    f"replay store is full ({self._max} entries): requests are refused until "
                    "older ones expire (raise max_entries for this traffic)"
                )
        while count > self._limit:
            self._grow()
        slots, mask = self._slots, self._mask
        for key in fingerprints:
            i = key & mask
            while slots[i]:
                i = (i + 1) & mask
            slots[i] = key
        self._count = count
        self._last = now
        if ttl > self._ttl:
            self._ttl = ttl

    def _update_check(self) -> None:
        self._check = min(self._limit, self._max - self._old_count)

    def _drop_old(self) -> None:
        self._old = None
        self._old_mask = self._old_count = self._old_expires = 0
        self._update_check()

    def _rotate(self, now: int, ttl: int) -> None:
        """End the current generation: keep its table read-only while it may hold live entries
        and start a table sized for the traffic just seen.

        A generation lasts as long as the longest ttl the one before it saw, so the previous
        table has expired by the time the current one is retired: there is never more than one
        previous table. (Should the clock have gone back, the current generation is extended
        until the previous one has expired, rather than forget anything early.)"""
        if self._old is not None:
            if self._old_expires > now:
                self._rotate_at = self._old_expires
                return
            self._drop_old()
        if self._count:
            expires = self._last + self._ttl * 1_000_000  # when its last entry expires, at most
            if expires > now:
                self._old, self._old_mask = self._slots, self._mask
                self._old_count, self._old_expires = self._count, expires
        size = _table_size(min(self._count, self._max))
        self._slots = _zeros(size)
        self._mask = size - 1
        self._limit = size // 3
        self._count = 0
        self._rotate_at = now + max(self._ttl, ttl, 1) * 1_000_000
        self._ttl = ttl
        self._update_check()

    def _grow(self) -> None:
        """Rehash the current table into one twice the size."""
        size = 2 * (self._mask + 1)
        slots = _zeros(size)
        mask = size - 1
        for key in filter(None, self._slots):
            i = key & mask
            while slots[i]:
                i = (i + 1) & mask
            slots[i] = key
        self._slots, self._mask, self._limit = slots, mask, size // 3
        self._update_check()


# -- Redis -------------------------------------------------------------------------------------

_REDIS_ADD = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, '1', 'PX', ARGV[1])
end
return 1
"""


class RedisNonceStore:
    """Nonces in Redis, shared by every gateway process and machine that uses the same server.

    ``add`` runs as one Lua script (check every key, then SET ... PX), so two processes racing
    on the same nonce cannot both win. Needs the optional ``redis`` package
    (``pip install vpseal[redis]``).
    """

    def __init__(
        self, client: Any = None, *, url: str | None = None, prefix: str = "vpseal:seen:"
    ) -> None:
        if client is None:
            try:
                import redis
            except ImportError as exc:  # pragma: no cover - depends on the extra
                raise ImportError("RedisNonceStore needs 'pip install vpseal[redis]'") from exc
            client = redis.Redis.from_url(url or "redis://127.0.0.1:6379/0")
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_REDIS_ADD)

    def __repr__(self) -> str:
        return f"RedisNonceStore(prefix={self._prefix!r})"

    def add(self, keys: Sequence[str], ttl_ms: int) -> bool:
        names = [self._prefix + key for key in keys]
        try:
            return bool(self._script(keys=names, args=[max(1, int(ttl_ms))]))
        except Exception as exc:  # any failure to consult the store must refuse, not accept
            # the type only: a connection error's text may carry the server URL and password
            raise NonceStoreError(f"replay store unavailable ({type(exc).__name__})") from exc


class _NoNonceStore:
    """The store of a window-only guard, which never consults it. Given to another guard
    (``ReplayGuard(store=window_only_guard.store)``), it refuses every request (code 7)
    rather than let a guard that claims to check nonces check none."""

    def add(self, keys: Sequence[str], ttl_ms: int) -> bool:
        raise NonceStoreError("a window-only guard's store records nothing: use a real store")

    def __repr__(self) -> str:
        return "<no nonce store>"


_NO_NONCE_STORE = _NoNonceStore()


class ReplayGuard:
    """Rejects a timestamp more than ``window_ms`` from now (either way) and anything seen.

    ``ReplayGuard()`` remembers nonces in this process (``MemoryNonceStore``, bounded by its
    ``max_entries``); give every process of a gateway the same ``RedisNonceStore`` so that
    they share one memory. ``ReplayGuard.window_only()`` is the explicit opt-out of the nonce
    check: it keeps the window and nothing else.
    """

    def __init__(self, window_ms: int = DEFAULT_WINDOW_MS, store: NonceStore | None = None):
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms <= 0:
            raise ValueError("window_ms must be a positive int")
        self.window_ms = window_ms
        self._window_only = False
        self.store = MemoryNonceStore() if store is None else store

    @property
    def store(self) -> NonceStore:
        return self._store

    @store.setter
    def store(self, store: NonceStore) -> None:
        self._store = store
        # exactly a MemoryNonceStore (not a subclass, which may redefine add): the fast path
        self._memory = store if type(store) is MemoryNonceStore else None
        # the window's clock: a MemoryNonceStore's own (one reading serves both), else the wall's
        self._clock = store._clock if isinstance(store, MemoryNonceStore) else _time_ns

    @classmethod
    def window_only(cls, window_ms: int = DEFAULT_WINDOW_MS) -> ReplayGuard:
        """A guard that checks the timestamp window only and remembers nothing: the explicit
        opt-out of replay protection, for a server that really wants none (a request can
        be replayed, as it is or with rewritten headers, until its timestamp leaves the
        window). Stateless, so one instance may be shared by every thread and call.

        The window stays: a request sealed with ``timestamp_ms=1`` (or any time more than
        ``window_ms`` from now) is refused with ReplayError (code 83). A test that opens
        requests with fixed old timestamps passes ``now_ms=`` to open_request/open_many."""
        guard = cls(window_ms, store=_NO_NONCE_STORE)
        guard._window_only = True
        return guard

    @property
    def checks_nonces(self) -> bool:
        """False for a ``window_only()`` guard."""
        return not self._window_only

    def __repr__(self) -> str:
        if self._window_only:
            return f"ReplayGuard.window_only(window_ms={self.window_ms})"
        return f"ReplayGuard(window_ms={self.window_ms}, store={self.store!r})"

    def check(
        self,
        agent_id: str,
        timestamp_ms: int,
        nonce: str,
        *,
        message_id: str | None = None,
        now: int | None = None,
    ) -> None:
        """Record the request or raise ReplayError (API code 83). A window-only guard checks
        the timestamp and records nothing.

        Call it only for a request whose GCM tag has verified (open_request does): recording
        an unauthenticated request would let anyone burn that agent's nonce."""
        if message_id is not None:
            encoded = message_id.encode("utf-8", "surrogatepass")
            self._admit(agent_id, timestamp_ms, nonce, encoded, now, 0, len(encoded))
            return
        current = self._check_window(timestamp_ms, now)
        if self._window_only:
            return
        ttl = timestamp_ms + self.window_ms - current + 1
        memory = self._memory
        if memory is not None:
            recorded = memory._add([hash((agent_id, nonce)) or 1], ttl)
        else:
            recorded = self._store.add([f"{agent_id}\x1fn\x1f{nonce}"], ttl)
        if not recorded:
            raise ReplayError(_SEEN)

    def _check_window(self, timestamp_ms: int, now: int | None) -> int:
        """The clock reading used (now_ms()), or ReplayError if timestamp_ms is outside the
        window. Records nothing: this may run before the GCM verdict."""
        current = self._clock() // 1_000_000 if now is None else now
        window = self.window_ms
        if not -window <= current - timestamp_ms <= window:
            raise ReplayError(_OUTSIDE_WINDOW)
        return current

    def _admit(
        self,
        agent_id: str,
        timestamp_ms: int,
        nonce: str,
        source: bytes,
        now: int | None,
        start: int = _MESSAGE_ID_START,
        end: int = _MESSAGE_ID_START + _MESSAGE_ID_CHARS,
    ) -> None:
        """check() for a request whose tag has verified, its message id ``source[start:end]``
        (by default, that of a canonical body). The hot path of open_request and open_many:
        with a MemoryNonceStore, the whole record happens here, in one call, with no message
        id string built (the store's own methods do the rare cases)."""
        clock = self._clock()  # one reading for both the window and the store
        current = clock // 1_000_000 if now is None else now
        age = current - timestamp_ms
        window = self.window_ms
        if not -window <= age <= window:
            raise ReplayError(_OUTSIDE_WINDOW)
        memory = self._memory
        if memory is None:
            if not self._window_only and not self._store.add(
                [
                    f"{agent_id}\x1fn\x1f{nonce}",
                    f"{agent_id}\x1fm\x1f{source[start:end].decode('latin-1')}",
                ],
                window - age + 1,
            ):
                raise ReplayError(_SEEN)
            return
        # Fingerprints scoped to the agent (the tuples' order keeps nonces and message ids
        # apart); 0 marks an empty slot.
        first = hash((agent_id, nonce)) or 1
        second = hash((source[start:end], agent_id)) or 1
        ttl = window - age + 1
        lock = memory._lock
        lock.acquire()
        try:
            if clock >= memory._rotate_at:
                memory._rotate(clock, ttl)
            slots = memory._slots
            mask = memory._mask
            i = first & mask
            value = slots[i]
            while value:
                if value == first:
                    raise ReplayError(_SEEN)
                i = (i + 1) & mask
                value = slots[i]
            j = second & mask
            value = slots[j]
            while value:
                if value == second:
                    raise ReplayError(_SEEN)
                j = (j + 1) & mask
                value = slots[j]
            old = memory._old  # the previous generation's table, if it may hold live entries
            if old is not None:
                old_mask = memory._old_mask
                k = first & old_mask
                value = old[k]
                while value:
                    if value == first:
                        raise ReplayError(_SEEN)
                    k = (k + 1) & old_mask
                    value = old[k]
                k = second & old_mask
                value = old[k]
                while value:
                    if value == second:
                        raise ReplayError(_SEEN)
                    k = (k + 1) & old_mask
                    value = old[k]
            count = memory._count + 2
            if count > memory._check or i == j:  # grow, make room, or share a slot
                memory._insert([first, second], ttl, clock)
                return
            slots[i] = first
            slots[j] = second
            memory._count = count
            memory._last = clock
            if ttl > memory._ttl:
                memory._ttl = ttl
        finally:
            lock.release()
