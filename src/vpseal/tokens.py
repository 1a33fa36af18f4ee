"""Where clients keep the agent's access token, so that many processes share one.

A gateway runs one client per process; without a shared store each process authenticates on
its own. A ``TokenStore`` holds the token under a key (the base URL and agent) and a short
lock, so that of N processes starting together one fetches and the others wait for its token.

``MemoryTokenStore`` (the default) shares within one process; ``RedisTokenStore`` (the
``vpseal[redis]`` extra) across processes and machines. A store that fails is bypassed: the
client then fetches its own token, so an outage of the store never stops payments.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from typing import Any, NamedTuple, Protocol

from vpseal.errors import ConfigError


class StoredToken(NamedTuple):
    """A token, when it expires (wall-clock seconds: processes share it) and its lifetime."""

    value: str
    expires_at: float
    lifetime: float

    def __repr__(self) -> str:
        return f"StoredToken(value=<hidden>, expires_at={self.expires_at:.0f})"

    def renew_at(self) -> float:
        """When clients stop using it: a tenth of the lifetime early, at most a minute."""
        return self.expires_at - min(60.0, self.lifetime / 10)


class TokenStore(Protocol):
    """Five non-blocking calls; the client does the waiting, within its own time limits."""

    def load(self, key: str) -> StoredToken | None:
        """The stored token, if any (expired or not)."""

    def save(self, key: str, token: StoredToken) -> None:
        """Store a fresh token (it may be dropped once expired)."""

    def discard(self, key: str, value: str) -> None:
        """Drop the token only if it is still ``value`` (the server refused it)."""

    def try_lock(self, key: str, ttl: float) -> str | None:
        """Take the fetch lock for ``ttl`` seconds: a lock id, or None if another holds it."""

    def unlock(self, key: str, lock_id: str) -> None:
        """Release the lock if ``lock_id`` still holds it."""


def store_key(base_url: str, agent_id: str) -> str:
    """One key per API endpoint and agent; hashed, so a URL with odd characters is harmless."""
    digest = hashlib.sha256(f"{base_url}\n{agent_id}".encode()).hexdigest()[:32]
    return f"vpseal:token:{digest}"


class MemoryTokenStore:
    """Within one process (the default: each client has its own unless you share one)."""

    def __init__(self) -> None:
        self._tokens: dict[str, StoredToken] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryTokenStore(tokens={len(self._tokens)})"

    def load(self, key: str) -> StoredToken | None:
        return self._tokens.get(key)

    def save(self, key: str, token: StoredToken) -> None:
        with self._mutex:  # never between discard's comparison and its deletion
            self._tokens[key] = token

    def discard(self, key: str, value: str) -> None:
        with self._mutex:
            held = self._tokens.get(key)
            if held is not None and held.value == value:
                del self._tokens[key]

    def try_lock(self, key: str, ttl: float) -> str | None:
        now = time.monotonic()
        with self._mutex:
            held = self._locks.get(key)
            if held is not None and held[1] > now:
                return None
            lock_id = secrets.token_hex(8)
            self._locks[key] = (lock_id, now + ttl)
            return lock_id

    def unlock(self, key: str, lock_id: str) -> None:
        with self._mutex:
            held = self._locks.get(key)
            if held is not None and held[0] == lock_id:
                del self._locks[key]


# Delete a key only if it still holds the given value: one atomic step in Redis.
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _encode(token: StoredToken) -> str:
    return f"{token.expires_at!r} {token.lifetime!r} {token.value}"


def _decode(raw: Any) -> StoredToken | None:
    """The stored token; None for a missing or unreadable entry."""
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        expires, lifetime, value = [*text.split(" ", 2), "", ""][:3]
        return StoredToken(value, float(expires), float(lifetime)) if value else None
    except ValueError:  # UnicodeDecodeError too
        return None


class RedisTokenStore:
    """In Redis, shared by every process of an agent: ``RedisTokenStore("redis://host/0")`` or
    ``RedisTokenStore(client=redis.Redis(...))``. The token is a secret: use a Redis that only
    the gateway can reach. Keys expire with the token; the lock with its ``ttl``."""

    def __init__(self, url: str | None = None, *, client: Any = None, timeout: float = 1.0) -> None:
        if (url is None) == (client is None):
            raise ConfigError("RedisTokenStore takes a url or a client, not both or neither")
        if url is not None:
            try:
                import redis
            except ImportError:
                raise ConfigError(
                    "RedisTokenStore needs redis-py: pip install 'vpseal[redis]'"
                ) from None
            client = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        self._redis = client
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)

    def __repr__(self) -> str:  # the URL may hold a password
        return "RedisTokenStore(...)"

    def load(self, key: str) -> StoredToken | None:
        return _decode(self._redis.get(key))

    def save(self, key: str, token: StoredToken) -> None:
        ttl_ms = int((token.expires_at - time.time()) * 1000)
        if ttl_ms > 0:
            self._redis.set(key, _encode(token), px=ttl_ms)

    def discard(self, key: str, value: str) -> None:
        raw = self._redis.get(key)
        held = _decode(raw)
        if held is not None and held.value == value:  # delete what was read, byte for byte
            self._delete_if_equal(keys=[key], args=[raw])

    def try_lock(self, key: str, ttl: float) -> str | None:
        lock_id = secrets.token_hex(8)
        taken = self._redis.set(key + ":lock", lock_id, nx=True, px=max(1, int(ttl * 1000)))
        return lock_id if taken else None

    def unlock(self, key: str, lock_id: str) -> None:
        self._delete_if_equal(keys=[key + ":lock"], args=[lock_id])


__all__ = ["MemoryTokenStore", "RedisTokenStore", "StoredToken", "TokenStore", "store_key"]
