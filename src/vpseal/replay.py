"""Replay protection: a timestamp window plus a store of nonces already seen.

The signature has no secret in it (SPEC.md section 4), so anyone who captured a request can give
it a fresh nonce, timestamp and signature. The guard therefore also remembers each message's
GCM IV and tag (the first 40 characters of the wire string), which nobody can forge without the
key: within the window, a captured body is refused however its headers were rewritten.

An entry lives until the request that created it could no longer pass the window check
(``timestamp + window``), so memory stays bounded by the traffic of one window.

``open_request`` and ``open_many`` always take a guard. A server that deliberately keeps no
record of nonces (say, a stateless test double) passes ``ReplayGuard.window_only()``: the
timestamp window is still enforced, only the nonce and message memory is left out.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from vpseal.errors import NonceStoreError, ReplayError

DEFAULT_WINDOW_MS = 300_000


def now_ms() -> int:
    """Unix time in milliseconds (the x-timestamp unit)."""
    return time.time_ns() // 1_000_000


class NonceStore(Protocol):
    """Where seen nonces live. ``add`` is atomic and all-or-nothing."""

    def add(self, keys: Sequence[str], ttl_ms: int) -> bool:
        """Record every key for ttl_ms; False (recording nothing) if any key is present."""


class MemoryNonceStore:
    """A thread-safe in-process store; expired entries are dropped as new ones arrive, soonest
    expiry first (a heap), so memory is bounded by what one window lets in."""

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire(time.monotonic())
            return len(self._expiry)

    def add(self, keys: Sequence[str], ttl_ms: int) -> bool:
        now = time.monotonic()
        expires = now + ttl_ms / 1000
        with self._lock:
            self._expire(now)
            expiry = self._expiry
            for key in keys:
                if expiry.get(key, 0.0) > now:
                    return False
            for key in keys:
                expiry[key] = expires
                heapq.heappush(self._heap, (expires, key))
            return True

    def _expire(self, now: float) -> None:
        heap, expiry = self._heap, self._expiry
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            if expiry.get(key) == when:
                del expiry[key]


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

    ``ReplayGuard()`` remembers nonces in this process (``MemoryNonceStore``); give every
    process of a gateway the same ``RedisNonceStore`` so that they share one memory.
    ``ReplayGuard.window_only()`` is the explicit opt-out of the nonce check: it keeps the
    window and nothing else.
    """

    def __init__(self, window_ms: int = DEFAULT_WINDOW_MS, store: NonceStore | None = None):
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms <= 0:
            raise ValueError("window_ms must be a positive int")
        self.window_ms = window_ms
        self.store: NonceStore = MemoryNonceStore() if store is None else store
        self._window_only = False

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
        the timestamp and records nothing."""
        current = time.time_ns() // 1_000_000 if now is None else now  # now_ms(), inline
        if abs(current - timestamp_ms) > self.window_ms:
            raise ReplayError("request timestamp is outside the accepted window")
        if self._window_only:
            return
        keys = [f"{agent_id}\x1fn\x1f{nonce}"]
        if message_id is not None:
            keys.append(f"{agent_id}\x1fm\x1f{message_id}")
        ttl = timestamp_ms + self.window_ms - current + 1
        if not self.store.add(keys, ttl):
            raise ReplayError("request was already received (nonce or message seen before)")
