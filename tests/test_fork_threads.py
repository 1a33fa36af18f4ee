"""IVs and nonces never repeat: across fork() (a child must not reuse random bytes its parent
had buffered), across glibc's _Fork() (which runs no pthread_atfork handlers), and across
threads sharing one Credentials. Each engine is tested explicitly, whatever VPSEAL_BACKEND
says."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _envelope_helpers import SCHEMES, WINDOW_ONLY, creds, iv_of

import vpseal

RECORD = 12 + 16  # iv + raw nonce
CHILDREN = 4
PER_CHILD = 10_000
PARENT = 10_000
BATCH = 100

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or sys.platform == "win32", reason="needs os.fork"
)


def _record(sealed: vpseal.SealedRequest) -> bytes:
    return iv_of(sealed.body) + bytes.fromhex(sealed.headers["x-nonce"])


def _seal_records(c: vpseal.Credentials, count: int) -> list[bytes]:
    """count requests, half through seal_request and half through seal_many."""
    out: list[bytes] = []
    payload = {"username": "player001", "transId": "CASHOUT-20250129-001"}
    single = count // 2
    for _ in range(single):
        out.append(_record(vpseal.seal_request(c, payload)))
    left = count - single
    while left > 0:
        n = min(BATCH, left)
        out.extend(_record(s) for s in vpseal.seal_many(c, [payload] * n))
        left -= n
    return out


def _reap(pids: list[int], deadline_s: float = 120.0) -> None:
    """Wait for every child; one that has not exited by the deadline is killed and the test
    fails (a hung child must never hang the suite)."""
    end = time.monotonic() + deadline_s
    left = set(pids)
    failed: list[str] = []
    while left:
        for pid in list(left):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                left.discard(pid)
                if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                    failed.append(f"child {pid} ended with status {status}")
        if left and time.monotonic() > end:
            for pid in left:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
            pytest.fail(f"{len(left)} forked children hung (other threads at fork: {others})")
        if left:
            time.sleep(0.01)
    assert failed == []


def _check_unique(records: list[bytes], expected: int) -> None:
    assert len(records) == expected
    assert all(len(r) == RECORD for r in records)
    ivs = {r[:12] for r in records}
    nonces = {r[12:] for r in records}
    assert len(ivs) == expected, f"{expected - len(ivs)} IVs repeated"
    assert len(nonces) == expected, f"{expected - len(nonces)} nonces repeated"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_fork_children_never_repeat_iv_or_nonce(backend: str, scheme: str, tmp_path: Path) -> None:
    c = creds(backend, scheme)
    # used before the fork, so that any per-thread random buffer in the parent is warm
    before = _seal_records(c, 50)
    paths = [tmp_path / f"child-{k}.bin" for k in range(CHILDREN)]
    pids = []
    for path in paths:
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            code = 1
            try:
                records = _seal_records(c, PER_CHILD)
                path.write_bytes(b"".join(records))
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    after = _seal_records(c, PARENT)  # the parent keeps sealing while the children run
    _reap(pids)
    records = before + after
    for path in paths:
        data = path.read_bytes()
        assert len(data) == PER_CHILD * RECORD
        records.extend(data[i : i + RECORD] for i in range(0, len(data), RECORD))
    _check_unique(records, 50 + PARENT + CHILDREN * PER_CHILD)


def test_fork_first_values_differ(backend: str, tmp_path: Path) -> None:
    """The very first request of each child (the one that would reuse a stale buffer) differs
    from the parent's next one and from every sibling's."""
    c = creds(backend)
    _seal_records(c, 3)
    paths = [tmp_path / f"first-{k}.bin" for k in range(8)]
    pids = []
    for path in paths:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                path.write_bytes(b"".join(_seal_records(c, 2)))
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    mine = _seal_records(c, 2)
    _reap(pids)
    records = list(mine)
    for path in paths:
        data = path.read_bytes()
        records.extend(data[i : i + RECORD] for i in range(0, len(data), RECORD))
    _check_unique(records, 2 + 8 * 2)


def test_fork_child_random_bytes_differ(tmp_path: Path) -> None:
    """The engine's own random_bytes (used for IVs and nonces) after fork."""
    engine = pytest.importorskip("vpseal._native", exc_type=ImportError)
    engine.random_bytes(16)  # warm the parent's buffer
    out = tmp_path / "child.bin"
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            out.write_bytes(engine.random_bytes(16) + engine.random_bytes(28))
            code = 0
        finally:
            os._exit(code)
    mine = engine.random_bytes(16) + engine.random_bytes(28)
    _reap([pid])
    assert out.read_bytes() != mine


# Run in a fresh interpreter: _Fork() copies only the calling thread and runs no fork handlers
# (Python's own included), so the split happens where no other thread can hold a lock.
_FORK_SCRIPT = r"""
import ctypes, json, os, sys
import vpseal
from vpseal._backend import load

backend = sys.argv[1]
libc = ctypes.PyDLL(None)  # PyDLL: the GIL stays held across the call
try:
    _Fork = libc._Fork
except AttributeError:
    print(json.dumps({"skip": "this libc has no _Fork (glibc 2.34+)"}))
    sys.exit(0)
_Fork.restype = ctypes.c_int
_Fork.argtypes = []
engine = load(backend)
creds = vpseal.Credentials("agent", bytes(32), backend=backend)
payload = {"a": 1}

def records():
    out = []
    for sealed in [vpseal.seal_request(creds, payload) for _ in range(3)] + vpseal.seal_many(
        creds, [payload] * 3
    ):
        out.append(["seal iv", sealed.body[15:31].decode()])
        out.append(["seal nonce", sealed.headers["x-nonce"]])
    # the IVs a caller of AesGcm.encrypt would draw
    out += [["random", engine.random_bytes(12).hex()] for _ in range(3)]
    return out

records()  # the parent's per-thread random cache is warm (and partly used) before the split
read_end, write_end = os.pipe()
pid = _Fork()
if pid == 0:
    code = 1
    try:
        os.write(write_end, json.dumps(records()).encode())
        code = 0
    finally:
        os._exit(code)
os.close(write_end)
mine = records()
chunks = []
while chunk := os.read(read_end, 65536):
    chunks.append(chunk)
_, status = os.waitpid(pid, 0)
print(json.dumps({"parent": mine, "child": json.loads(b"".join(chunks)), "status": status}))
"""


@pytest.mark.parametrize("engine_name", ["native", "fallback"])
def test_fork_without_atfork_handlers_never_repeats(engine_name: str) -> None:
    """glibc's _Fork() (through ctypes) skips pthread_atfork: parent and child still seal and
    draw different IVs and nonces after the split."""
    if engine_name == "native":
        pytest.importorskip("vpseal._native", exc_type=ImportError)
    proc = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT, engine_name],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    if "skip" in result:
        pytest.skip(result["skip"])
    assert result["status"] == 0
    parent = {value for _, value in result["parent"]}
    child = {value for _, value in result["child"]}
    assert len(parent) == len(result["parent"]) and len(child) == len(result["child"])
    shared = [kind for kind, value in result["child"] if value in parent]
    assert shared == [], f"parent and child repeated: {shared}"


def _run_threads(n: int, target: Any) -> list[Any]:
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n, timeout=60)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


@pytest.mark.parametrize("scheme", SCHEMES)
def test_threads_never_repeat_iv_or_nonce(backend: str, scheme: str) -> None:
    c = creds(backend, scheme)
    per_thread = 3_000
    results = _run_threads(8, lambda i: _seal_records(c, per_thread))
    _check_unique([r for chunk in results for r in chunk], 8 * per_thread)


def test_threads_seal_and_open_with_one_credentials(backend: str) -> None:
    """Shared key objects: no cross-talk between threads sealing and opening at once."""
    c = creds(backend)
    ring = vpseal.Keyring([c])

    def work(t: int) -> int:
        done = 0
        for i in range(400):
            payload = {"t": t, "i": i, "pad": "z" * ((t * 131 + i) % 900)}
            sealed = vpseal.seal_request(c, payload)
            assert (
                vpseal.open_request(c, sealed.headers, sealed.body, guard=WINDOW_ONLY).payload
                == payload
            )
            done += 1
        batch = vpseal.seal_many(c, [{"t": t, "j": j} for j in range(200)])
        opened = vpseal.open_many(ring, batch, guard=WINDOW_ONLY)
        assert [o.payload for o in opened] == [{"t": t, "j": j} for j in range(200)]
        return done + len(opened)

    assert _run_threads(8, work) == [600] * 8


def test_threads_share_guard_and_credentials(backend: str) -> None:
    c = creds(backend)
    guard = vpseal.ReplayGuard()
    sealed = vpseal.seal_many(c, [{"i": i} for i in range(400)])

    def work(_: int) -> list[int]:
        won = []
        for i, s in enumerate(sealed):
            try:
                vpseal.open_request(c, s.headers, s.body, guard=guard)
            except vpseal.ReplayError:
                continue
            won.append(i)
        return won

    results = _run_threads(8, work)
    assert sorted(i for won in results for i in won) == list(range(400))


def test_records_are_real_ivs(backend: str) -> None:
    """Sanity for the helpers above: the IV read back is the one in the wire."""
    c = creds(backend)
    iv = bytes(range(12))
    sealed = vpseal.seal_request(c, {"a": 1}, iv=iv)
    assert iv_of(sealed.body) == iv
    assert base64.b64encode(iv).decode() == sealed.body[15:31].decode()
