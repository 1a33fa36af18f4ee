"""Token stores (MemoryTokenStore, RedisTokenStore) and how clients share one token through
them: one /v2/auth call for many clients, threads, tasks and processes; a refused token renewed
once and replaced in the store; a failing store bypassed; a stuck lock costing bounded time.

Redis tests need VPSEAL_REDIS_URL (skipped when unset, failed when set but unreachable)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from _envelope_helpers import redis_client, redis_url

import vpseal
from vpseal.sandbox import Sandbox
from vpseal.tokens import StoredToken, TokenStore, store_key

pytest_plugins = ["_sandbox_helpers"]

MakeSandbox = Callable[..., Sandbox]
AUTH = "requests /v2/auth"
CASHOUT = "requests /v2/members/cashout"
FAST: dict[str, Any] = {"timeout": 2.0, "max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05}
STORE_KINDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


def _token(value: str = "tok.en-value_1", ttl: float = 600.0) -> StoredToken:
    return StoredToken(value, time.time() + ttl, ttl)


def _key(sandbox: Sandbox) -> str:
    """The key the sandbox's clients keep their token under."""
    return store_key(sandbox.base_url, sandbox.config.agent_id)


def _auths(sandbox: Sandbox) -> int:
    return sandbox.stats().get(AUTH, 0)


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def made_keys() -> list[str]:
    """Store keys this test used (deleted from Redis afterwards)."""
    return [f"vpseal-test:{uuid.uuid4().hex}:token"]


@pytest.fixture
def make_sandbox(make_sandbox: MakeSandbox, made_keys: list[str]) -> MakeSandbox:
    """The helpers' sandboxes, each with its own agent: its store key is new (a Redis key left
    by an earlier run on the same port can never be picked up) and is cleaned up after."""

    def make(**options: Any) -> Sandbox:
        options.setdefault("agent_id", f"agent-{uuid.uuid4().hex[:12]}")
        options.setdefault("token_ttl", 600)
        sandbox = make_sandbox(**options)
        made_keys.append(_key(sandbox))
        return sandbox

    return make


@pytest.fixture
def key(made_keys: list[str]) -> str:
    """A fresh key for the store contract tests."""
    return made_keys[0]


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, made_keys: list[str]) -> Iterator[TokenStore]:
    """One store of each kind; a RedisTokenStore on VPSEAL_REDIS_URL."""
    if request.param == "memory":
        yield vpseal.MemoryTokenStore()
        return
    url = redis_url()
    client = redis_client(url)
    yield vpseal.RedisTokenStore(url)
    for made in made_keys:
        client.delete(made, made + ":lock")


@pytest.fixture
def redis_server(made_keys: list[str]) -> Iterator[tuple[str, Any]]:
    """(VPSEAL_REDIS_URL, a redis client) for the Redis-only tests; keys cleaned up after."""
    url = redis_url()
    client = redis_client(url)
    yield url, client
    for made in made_keys:
        client.delete(made, made + ":lock")


# ------------------------------------------------------------------------------ store contract


def test_load_of_a_missing_key_is_none(store: TokenStore, key: str) -> None:
    assert store.load(key) is None


def test_save_and_load_round_trip(store: TokenStore, key: str) -> None:
    token = StoredToken("eyJhbGciOi.x-y_z.sig", time.time() + 123.456789, 123.456789)
    store.save(key, token)
    loaded = store.load(key)
    assert loaded == token  # value, expires_at and lifetime, exactly (no rounding)
    assert isinstance(loaded, StoredToken)
    assert store.load(key + "-other") is None  # one key per endpoint and agent
    newer = _token("second-token")
    store.save(key, newer)
    assert store.load(key) == newer  # save replaces


def test_discard_removes_only_a_matching_value(store: TokenStore, key: str) -> None:
    store.discard(key, "never-stored")  # a missing key: nothing to do, no error
    token = _token("current")
    store.save(key, token)
    store.discard(key, "an-older-token")  # refused earlier, replaced since: keep the new one
    assert store.load(key) == token
    store.discard(key, "current")
    assert store.load(key) is None


def test_discard_removes_a_token_saved_with_whole_number_times(store: TokenStore, key: str) -> None:
    """StoredToken's times are floats, but an int is a valid float: 600, not 600.0."""
    store.save(key, StoredToken("whole", int(time.time()) + 600, 600))
    assert store.load(key) is not None
    store.discard(key, "whole")
    assert store.load(key) is None


def test_memory_discard_never_drops_a_token_saved_meanwhile(key: str) -> None:
    """A save that lands while discard compares must not be deleted by it: discard checks
    and deletes as one step under the store's mutex, so save must take that mutex too."""
    store = vpseal.MemoryTokenStore()
    store.save(key, _token("refused"))
    newer = _token("renewed")
    savers: list[threading.Thread] = []

    class Racing(dict):  # type: ignore[type-arg]
        def get(self, k: Any, default: Any = None) -> Any:
            held = super().get(k, default)
            if not savers:  # discard has read "refused": another client saves right now
                savers.append(threading.Thread(target=store.save, args=(key, newer)))
                savers[0].start()
                savers[0].join(0.2)  # it either lands here, or waits for discard's mutex
            return held

    store._tokens = Racing(store._tokens)
    store.discard(key, "refused")
    savers[0].join(5)
    assert not savers[0].is_alive()
    assert store.load(key) == newer


def test_try_lock_is_exclusive_until_unlock(store: TokenStore, key: str) -> None:
    first = store.try_lock(key, 30)
    assert isinstance(first, str) and first
    assert store.try_lock(key, 30) is None
    assert store.try_lock(key, 30) is None
    other = store.try_lock(key + "-other", 30)  # locks are per key
    assert other is not None
    store.unlock(key + "-other", other)
    store.unlock(key, first)
    second = store.try_lock(key, 30)
    assert second is not None and second != first
    store.unlock(key, second)


def test_unlock_with_a_wrong_id_does_not_release(store: TokenStore, key: str) -> None:
    lock = store.try_lock(key, 30)
    assert lock is not None
    store.unlock(key, "not-the-lock-id")
    assert store.try_lock(key, 30) is None
    store.unlock(key, lock)
    assert store.try_lock(key, 30) is not None


def test_lock_expires_after_its_ttl_and_a_stale_unlock_spares_the_new_holder(
    store: TokenStore, key: str
) -> None:
    stale = store.try_lock(key, 0.2)
    assert stale is not None
    assert store.try_lock(key, 0.2) is None
    time.sleep(0.35)
    fresh = store.try_lock(key, 30)  # the dead holder's lock has lapsed
    assert fresh is not None and fresh != stale
    store.unlock(key, stale)  # the old holder wakes up and unlocks: not its lock any more
    assert store.try_lock(key, 30) is None


def test_lock_and_token_are_independent(store: TokenStore, key: str) -> None:
    token = _token()
    store.save(key, token)
    lock = store.try_lock(key, 30)
    assert lock is not None
    assert store.load(key) == token
    store.discard(key, token.value)
    assert store.load(key) is None
    assert store.try_lock(key, 30) is None  # discarding the token left the lock alone
    store.unlock(key, lock)


@pytest.mark.redis
def test_redis_key_expires_with_the_token(redis_server: tuple[str, Any], key: str) -> None:
    url, client = redis_server
    store = vpseal.RedisTokenStore(url)
    store.save(key, StoredToken("short-lived", time.time() + 0.4, 0.4))
    assert 0 < client.pttl(key) <= 400
    assert store.load(key) is not None
    time.sleep(0.6)
    assert client.exists(key) == 0
    assert store.load(key) is None
    store.save(key, StoredToken("already-expired", time.time() - 1, 60))
    assert client.exists(key) == 0  # never stored
    lock = store.try_lock(key, 0.5)
    assert lock is not None and 0 < client.pttl(key + ":lock") <= 500


@pytest.mark.redis
def test_redis_shared_between_instances_and_a_corrupt_entry_reads_as_missing(
    redis_server: tuple[str, Any], key: str
) -> None:
    url, client = redis_server
    one = vpseal.RedisTokenStore(url)
    two = vpseal.RedisTokenStore(client=client)
    token = _token()
    one.save(key, token)
    assert two.load(key) == token
    lock = two.try_lock(key, 30)
    assert lock is not None and one.try_lock(key, 30) is None
    one.unlock(key, lock)  # any instance may release the holder's lock by its id
    assert two.try_lock(key, 30) is not None
    for garbage in ("garbage", "", "1.5 2.5", "x y value", "1e300 nan ", b"1 2 \xff\xfe"):
        client.set(key, garbage)
        assert one.load(key) is None, garbage
    client.set(key, "not-a-float 60 tok")
    one.discard(key, "tok")  # must not raise on what load cannot read
    assert client.get(key) == b"not-a-float 60 tok"


def test_redis_store_takes_a_url_or_a_client() -> None:
    redis = pytest.importorskip("redis")
    with pytest.raises(vpseal.ConfigError):
        vpseal.RedisTokenStore()
    with pytest.raises(vpseal.ConfigError):
        vpseal.RedisTokenStore("redis://127.0.0.1:6391/0", client=redis.Redis())


def test_reprs_never_show_the_token_or_a_redis_password(key: str) -> None:
    pytest.importorskip("redis")
    token = _token("SECRET-TOKEN-VALUE")
    memory = vpseal.MemoryTokenStore()
    memory.save(key, token)
    remote = vpseal.RedisTokenStore("redis://:hunter2@127.0.0.1:6391/0")  # not connected
    for text in (repr(token), str(token), f"{token!r}", repr(memory), str(memory)):
        assert "SECRET-TOKEN-VALUE" not in text, text
    for text in (repr(remote), str(remote)):
        assert "hunter2" not in text and "6391" not in text, text


# ------------------------------------------------------------------------------ clients, sync


def test_clients_sharing_a_store_authenticate_once(
    make_sandbox: MakeSandbox, store: TokenStore
) -> None:
    sandbox = make_sandbox(members={"ann": 1, "ben": 2, "cid": 3})
    with vpseal.Client(**sandbox.client_kwargs(), **FAST, token_store=store) as a:
        assert a.cashout("ann").amount == Decimal(1)
    with vpseal.Client(**sandbox.client_kwargs(), **FAST, token_store=store) as b:
        assert b.cashout("ben").amount == Decimal(2)
    held = store.load(_key(sandbox))
    assert held is not None and held.value == b._tokens.get()[0] == a._tokens.get()[0]
    assert held.lifetime == 600 and abs(held.expires_at - (time.time() + 600)) < 10
    assert _auths(sandbox) == 1
    # Without a shared store each client authenticates on its own: the count above means it.
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as c:
        c.cashout("cid")
    assert _auths(sandbox) == 2


def test_clients_starting_together_on_threads_authenticate_once(
    make_sandbox: MakeSandbox, store: TokenStore
) -> None:
    n = 6
    sandbox = make_sandbox(members={f"m{i}": i + 1 for i in range(n)})
    clients = [
        vpseal.Client(**sandbox.client_kwargs(), **FAST, token_store=store) for _ in range(n)
    ]
    barrier = threading.Barrier(n)
    results: dict[int, Any] = {}

    def run(i: int) -> None:
        barrier.wait(10)
        try:
            results[i] = clients[i].cashout(f"m{i}").amount
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for c in clients:
        c.close()
    assert results == {i: Decimal(i + 1) for i in range(n)}
    assert _auths(sandbox) == 1


def test_a_refused_token_is_renewed_once_and_replaced_in_the_store(
    make_sandbox: MakeSandbox, store: TokenStore
) -> None:
    sandbox = make_sandbox(members={"ann": 1, "ben": 2, "cid": 3})
    key = _key(sandbox)
    with (
        vpseal.Client(**sandbox.client_kwargs(), **FAST, token_store=store) as a,
        vpseal.Client(**sandbox.client_kwargs(), **FAST, token_store=store) as b,
    ):
        a.cashout("ann")
        old = store.load(key)
        assert old is not None and _auths(sandbox) == 1
        sandbox.revoke_tokens()  # every token issued so far is now refused (code 83)
        assert b.cashout("ben").amount == Decimal(2)
        new = store.load(key)
        assert new is not None and new.value != old.value
        assert new.value == b._tokens.get()[0]
        assert (_auths(sandbox), sandbox.stats()["code 83"]) == (2, 1)
        # a still holds the refused token: refused once, it takes the renewed one from the
        # store (its discard of the old value must not drop the new one) and fetches nothing.
        assert a.cashout("cid").amount == Decimal(3)
        assert (_auths(sandbox), sandbox.stats()["code 83"]) == (2, 2)
        assert a._tokens.get()[0] == new.value and store.load(key) == new


def test_a_bogus_stored_token_is_renewed_once_and_replaced(
    make_sandbox: MakeSandbox, store: TokenStore
) -> None:
    sandbox = make_sandbox(members={"ann": 5})
    key = _key(sandbox)
    store.save(key, _token("bogus-token-from-elsewhere"))
    with vpseal.Client(**sandbox.client_kwargs(), **FAST, token_store=store) as c:
        assert c.cashout("ann").amount == Decimal(5)
    held = store.load(key)
    assert held is not None and held.value != "bogus-token-from-elsewhere"
    assert held.value == c._tokens.get()[0]
    stats = sandbox.stats()
    assert (stats[AUTH], stats["code 83"], stats[CASHOUT]) == (1, 1, 2)


class _HolderFinishesAfterOurLook:
    """A store in which another holder saves its token and releases the lock right after
    this client looked and found none (between its load and its try_lock)."""

    def __init__(self, inner: TokenStore, token: StoredToken, holder_lock: str) -> None:
        self.inner = inner
        self.token = token
        self.holder_lock = holder_lock
        self.pending = True

    def load(self, key: str) -> StoredToken | None:
        held = self.inner.load(key)
        if held is None and self.pending:
            self.pending = False
            self.inner.save(key, self.token)
            self.inner.unlock(key, self.holder_lock)
        return held

    def save(self, key: str, token: StoredToken) -> None:
        self.inner.save(key, token)

    def discard(self, key: str, value: str) -> None:
        self.inner.discard(key, value)

    def try_lock(self, key: str, ttl: float) -> str | None:
        return self.inner.try_lock(key, ttl)

    def unlock(self, key: str, lock_id: str) -> None:
        self.inner.unlock(key, lock_id)


def test_a_lock_taken_just_after_the_holder_stored_its_token_does_not_fetch_again(
    make_sandbox: MakeSandbox, store: TokenStore
) -> None:
    """Looking (none stored), then locking, can straddle the previous holder's save and
    unlock: the new holder must look once more before it fetches a second token."""
    sandbox = make_sandbox(members={"ann": 3})
    key = _key(sandbox)
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as other:  # the other holder
        other.authenticate()
        fetched = other._tokens.get()[0]
    holder_lock = store.try_lock(key, 30)
    assert holder_lock is not None
    racing = _HolderFinishesAfterOurLook(store, _token(fetched), holder_lock)
    with vpseal.Client(**sandbox.client_kwargs(), **FAST, token_store=racing) as c:
        assert c.cashout("ann").amount == Decimal(3)
        assert c._tokens.get()[0] == fetched
    assert not racing.pending
    assert _auths(sandbox) == 1  # the other holder's fetch only
    assert store.try_lock(key, 1) is not None  # the lock taken to no purpose was released


class _BrokenStore:
    """A store whose every call fails, the way an unreachable Redis does; the errors name a
    password and the token, which must never reach the log."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _fail(self, name: str, detail: str = "") -> None:
        self.calls.append(name)
        raise ConnectionError(f"redis://:hunter2@cache.internal:6379/0 is down {detail}")

    def load(self, key: str) -> StoredToken | None:
        self._fail("load")
        return None

    def save(self, key: str, token: StoredToken) -> None:
        self._fail("save", f"while saving {token.value}")

    def discard(self, key: str, value: str) -> None:
        self._fail("discard", f"while discarding {value}")

    def try_lock(self, key: str, ttl: float) -> str | None:
        self._fail("try_lock")
        return None

    def unlock(self, key: str, lock_id: str) -> None:
        self._fail("unlock")


def test_a_failing_store_is_bypassed_with_a_warning_and_no_secret_in_the_log(
    make_sandbox: MakeSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = make_sandbox(members={"ann": 4, "ben": 6})
    broken = _BrokenStore()
    caplog.set_level(logging.DEBUG)
    with vpseal.Client(**sandbox.client_kwargs(), **FAST, token_store=broken) as c:
        assert c.cashout("ann").amount == Decimal(4)
        first = c._tokens.get()[0]
        sandbox.revoke_tokens()  # the renewal path goes through the broken store too
        assert c.cashout("ben").amount == Decimal(6)
        second = c._tokens.get()[0]
    assert first != second and _auths(sandbox) == 2
    assert {"load", "try_lock", "save", "discard"} <= set(broken.calls)
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == "vpseal.client"
    ]
    assert warnings and all("token store failed" in r.getMessage() for r in warnings)
    assert all("ConnectionError" in r.getMessage() for r in warnings)
    text = caplog.text + "\n".join(logging.Formatter().format(r) for r in caplog.records)
    for secret in (
        first, second, "hunter2", "cache.internal",
        sandbox.config.api_key, sandbox.config.secret,
    ):  # fmt: skip
        assert secret not in text


def test_an_unreachable_redis_store_is_bypassed(
    make_sandbox: MakeSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("redis")
    sandbox = make_sandbox(members={"ann": 4})
    store = vpseal.RedisTokenStore("redis://:hunter2@127.0.0.1:1/0", timeout=0.5)
    caplog.set_level(logging.DEBUG)
    with vpseal.Client(**sandbox.client_kwargs(), **FAST, token_store=store) as c:
        assert c.cashout("ann").amount == Decimal(4)
        token = c._tokens.get()[0]
    assert _auths(sandbox) == 1
    assert "token store failed" in caplog.text
    assert "hunter2" not in caplog.text and token not in caplog.text


def test_a_dead_lock_holder_delays_a_client_but_does_not_stop_it(
    make_sandbox: MakeSandbox, store: TokenStore
) -> None:
    sandbox = make_sandbox(members={"ann": 7})
    key = _key(sandbox)
    options = {**FAST, "timeout": 1.0, "max_retries": 0}
    with vpseal.Client(**sandbox.client_kwargs(), **options, token_store=store) as c:
        flow = c._token_flow(None)
        assert flow.lock_ttl == pytest.approx(2.0)  # 1 try x 1 s + no backoff + 1 s
        started = time.monotonic()
        assert store.try_lock(key, 0.5) is not None  # taken by a process that then died
        assert c.cashout("ann").amount == Decimal(7)
        elapsed = time.monotonic() - started
        token = c._tokens.get()[0]
    assert 0.45 <= elapsed < 2 * flow.lock_ttl  # waited for the lock to lapse, not longer
    assert _auths(sandbox) == 1
    held = store.load(key)
    assert held is not None and held.value == token
    assert store.try_lock(key, 1) is not None  # and it released the lock it took


def test_a_lock_holder_that_never_stores_a_token_ends_in_transport_error(
    make_sandbox: MakeSandbox,
) -> None:
    """The waiting is TokenFlow's, whatever the store (one kind keeps the file fast)."""
    store = vpseal.MemoryTokenStore()
    sandbox = make_sandbox(members={"ann": 7})
    key = _key(sandbox)
    assert store.try_lock(key, 60) is not None  # alive, holding the lock, storing nothing
    options = {**FAST, "timeout": 0.1, "max_retries": 0}
    with vpseal.Client(**sandbox.client_kwargs(), **options, token_store=store) as c:
        wait_limit = 2 * c._token_flow(None).lock_ttl
        assert wait_limit == pytest.approx(2.2)
        started = time.monotonic()
        with pytest.raises(vpseal.TransportError, match="lock"):
            c.cashout("ann")
        elapsed = time.monotonic() - started
    assert wait_limit - 0.05 <= elapsed < wait_limit + 1.0
    assert sandbox.stats().get(AUTH, 0) == 0 and sandbox.stats().get(CASHOUT, 0) == 0
    assert sandbox.balance("ann") == Decimal(7)
    assert store.load(key) is None


# ------------------------------------------------------------------------------ clients, async


async def test_concurrent_async_cashouts_across_clients_authenticate_once(
    make_sandbox: MakeSandbox, store: TokenStore
) -> None:
    n_clients, per_client = 3, 8
    members = {f"m{i}": i + 1 for i in range(n_clients * per_client)}
    sandbox = make_sandbox(members=members)
    clients = [
        vpseal.AsyncClient(**sandbox.client_kwargs(), **FAST, token_store=store)
        for _ in range(n_clients)
    ]
    try:
        results = await asyncio.gather(
            *(clients[i % n_clients].cashout(name) for i, name in enumerate(members))
        )
    finally:
        for c in clients:
            await c.aclose()
    assert [r.amount for r in results] == [Decimal(v) for v in members.values()]
    assert all(sandbox.balance(name) == 0 for name in members)
    stats = sandbox.stats()
    assert (stats[AUTH], stats.get("code 83", 0)) == (1, 0)
    held = store.load(_key(sandbox))
    assert held is not None
    assert {c._tokens.get()[0] for c in clients} == {held.value}


# ------------------------------------------------------------------------------ processes


# A child process: its own client on the shared Redis store (job from stdin), "ready" once it
# has one, then one cash-out when the parent says "go" (so that all of them start together).
_WORKER = """
import json, sys
import vpseal
job = json.loads(sys.stdin.readline())
store = vpseal.RedisTokenStore(job["url"])
client = vpseal.Client(**job["kwargs"], **job["options"], http=job["http"], token_store=store)
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit("no go")
try:
    result = client.cashout(job["member"])
    print(json.dumps({"amount": str(result.amount)}), flush=True)
except Exception as exc:
    print(json.dumps({"error": repr(exc)}), flush=True)
"""


@pytest.mark.redis
def test_processes_starting_together_on_redis_authenticate_once(
    make_sandbox: MakeSandbox, redis_server: tuple[str, Any], http_option: str
) -> None:
    url, client = redis_server
    n = 4
    members = {f"p{i}": i + 1 for i in range(n)}
    sandbox = make_sandbox(members=members)
    procs: list[subprocess.Popen[str]] = []
    try:
        for member in members:
            job = {
                "url": url, "kwargs": dict(sandbox.client_kwargs()), "options": FAST,
                "http": http_option, "member": member,
            }  # fmt: skip
            proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
            procs.append(proc)
        for proc in procs:  # every process has imported vpseal and made its client
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        assert _auths(sandbox) == 0
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        got = {}
        for member, proc in zip(members, procs, strict=True):
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, out
            got[member] = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert got == {name: {"amount": str(Decimal(v))} for name, v in members.items()}
    assert all(sandbox.balance(name) == 0 for name in members)
    stats = sandbox.stats()
    assert (stats[AUTH], stats[CASHOUT], stats.get("code 83", 0)) == (1, n, 0)
    held = vpseal.RedisTokenStore(client=client).load(_key(sandbox))
    assert held is not None and held.lifetime == 600
