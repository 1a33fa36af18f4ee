"""Running the server, pinning processes, and measuring one client over N requests.

What is measured is ``time.process_time()`` of the client process over N requests (it counts
every thread, the Rust runtimes of pyreqwest included) and the wall time, after a warm-up on
the same connections. The server's own counters, read before and after through
``GET /_stats``, say how many requests it saw (more than N: the client retried), how many
connections it accepted (reconnect churn) and how busy it was (its CPU over the round's wall
time: near 100 % means it, not the client, set the pace).
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import itertools
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

SERVER = Path(__file__).with_name("server.py")
SHORT = bool(os.environ.get("VPSEAL_BENCH_SHORT"))
BOOST = -10  # nice value for the client and server processes, where permitted


@dataclass(frozen=True)
class Plan:
    """How much to measure: up to n requests per round after a warm-up of its own, in
    interleaved rounds. A client too slow for n requests in about ``budget`` seconds (httpx:
    1-10 ms a request) gets as many as fit, judged from its warm-up's pace, and never fewer
    than min_n: the whole matrix then runs in minutes, and every figure is still an average
    over hundreds of requests."""

    n: int
    warmup: int
    rounds: int
    budget: float
    min_n: int
    warmups: int = 2  # a second warm-up when the first one was still opening connections

    @classmethod
    def default(cls, short: bool = SHORT) -> Plan:
        """VPSEAL_GATEWAY_ROUNDS=N overrides the number of rounds (10 for a careful run)."""
        if short:
            plan = cls(n=300, warmup=60, rounds=1, budget=0.3, min_n=100, warmups=1)
        else:
            plan = cls(n=2000, warmup=200, rounds=4, budget=0.8, min_n=200)
        rounds = os.environ.get("VPSEAL_GATEWAY_ROUNDS", "")
        return replace(plan, rounds=int(rounds)) if rounds.isdigit() else plan

    def for_concurrency(self, c: int) -> Plan:
        """At least two requests per connection in the warm-up."""
        return replace(self, warmup=max(self.warmup, 2 * c))

    def count(self, per_request: float) -> int:
        """Requests to measure, given the warm-up's wall time per request."""
        if per_request * self.n <= self.budget:
            return self.n
        return max(self.min_n, int(self.budget / per_request))


# ---------------------------------------------------------------- CPUs


def cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return []


def pin(pid: int, cpu: int | None) -> bool:
    """Pin a process to one CPU when there are at least two to share out; True if pinned."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(pid, {cpu})
    except OSError:
        return False
    return True


def boost(pid: int = 0) -> bool:
    """Raise a process's scheduling priority (nice BOOST) where allowed (root, CAP_SYS_NICE),
    so that other work on a shared machine disturbs the measurement less; True if done. On
    Linux this is per thread: call it before the process starts threads, which inherit it.
    VPSEAL_BENCH_NO_BOOST=1 turns it off."""
    if os.environ.get("VPSEAL_BENCH_NO_BOOST") or not hasattr(os, "setpriority"):
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, pid, BOOST)
    except OSError:
        return False
    return True


def layout() -> tuple[int | None, int | None]:
    """(client CPU, server CPU): the first two CPUs this process may use, or none if fewer."""
    mine = cpus()
    return (mine[0], mine[1]) if len(mine) >= 2 else (None, None)


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy since boot (Linux; 0.0 elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # up to steal; guest is in user


# ---------------------------------------------------------------- the server


class ServerProcess:
    """bench/gateway/server.py in its own process, on its own CPU when there is one."""

    def __init__(
        self,
        cert: tuple[str, str] | None = None,
        *,
        verify: bool = True,
        loop: str = "auto",
        cpu: int | None = None,
    ) -> None:
        command = [sys.executable, str(SERVER), "--port", "0", "--loop", loop]
        if cert is not None:
            command += ["--tls", *cert]
        if not verify:
            command.append("--no-verify")
        self.cafile = cert[0] if cert else None
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(line)
        self.banner = self.proc.stderr.readline().strip()
        self.pinned = pin(self.proc.pid, cpu)
        self.boosted = boost(self.proc.pid)  # its only thread: the event loop's
        self._context = ssl.create_default_context(cafile=self.cafile) if self.cafile else None

    def stats(self) -> dict[str, Any]:
        """The server's counters and CPU time (not part of any measured window)."""
        if self._context is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self._context, timeout=30
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", "/_stats")
            stats: dict[str, Any] = json.loads(conn.getresponse().read())
            return stats
        finally:
            conn.close()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- one round


@dataclass
class Tally:
    """Outcomes of one run: API answers other than code 0, and failures with no answer."""

    api_errors: int = 0
    errors: int = 0
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]

    def refused(self) -> None:
        with self._lock:
            self.api_errors += 1


async def run_async(driver: Any, n: int, c: int, prefix: str) -> Tally:
    """n requests from c tasks, each one request at a time."""
    tally = Tally()
    counter = itertools.count()
    one = driver.one

    async def worker(slot: int) -> None:
        while (i := next(counter)) < n:
            try:
                code = await one(slot, f"{prefix}{i}")
            except Exception as exc:
                tally.failed(exc)
            else:
                if code != 0:
                    tally.refused()

    await asyncio.gather(*(worker(slot) for slot in range(c)))
    return tally


def run_sync(driver: Any, pool: ThreadPoolExecutor, n: int, c: int, prefix: str) -> Tally:
    """n requests from c threads of a pool kept across rounds (no thread start-up measured)."""
    tally = Tally()
    counter = itertools.count()  # next() on it is atomic under the GIL
    one = driver.one

    def worker(slot: int) -> None:
        while (i := next(counter)) < n:
            try:
                code = one(slot, f"{prefix}{i}")
            except Exception as exc:
                tally.failed(exc)
            else:
                if code != 0:
                    tally.refused()

    for future in [pool.submit(worker, slot) for slot in range(c)]:
        future.result()
    return tally


@dataclass
class Round:
    """One measured round of one client."""

    n: int
    cpu: float
    wall: float
    errors: int
    api_errors: int
    last_error: str
    server_requests: int
    server_refused: int
    server_connections: int
    server_busy: float
    others_busy: float  # cores used by other processes on the machine during the round

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def warm_up(run: Callable[[int, str], Tally], plan: Plan, c: int, tag: str) -> float:
    """plan.warmup requests in chunks, or fewer once half the round's budget is spent (but
    at least one chunk of 2c: every connection used); returns the wall time per request."""
    chunk = max(2 * c, 50)
    done, start = 0, time.perf_counter()
    while done < plan.warmup:
        run(chunk, f"{tag}{done}-")
        done += chunk
        if time.perf_counter() - start >= plan.budget / 2:
            break
    return (time.perf_counter() - start) / done


def measure(
    run: Callable[[int, str], Tally], server: ServerProcess, plan: Plan, c: int, tag: str
) -> Round:
    """Warm up, then time one round; run(n, transId prefix) does the work. The warm-up is
    repeated (up to plan.warmups times) while the client's pool is still opening connections, so
    that connection set-up (a TLS handshake on both sides) is not what the round measures.
    The machine's other load (CPU used by neither this client nor the server) is recorded:
    on a shared machine it is what makes a round slow."""
    n = plan.n
    for attempt in range(plan.warmups):
        opened = server.stats()["connections"]
        per_request = warm_up(run, plan, c, f"{tag}-w{attempt}-")
        if attempt == 0:
            n = plan.count(per_request)
        if server.stats()["connections"] - opened <= 1:  # the stats call's own connection
            break
    gc.collect()
    before = server.stats()
    machine = machine_busy()
    cpu, wall = time.process_time(), time.perf_counter()
    tally = run(n, f"{tag}-m-")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    machine = machine_busy() - machine
    after = server.stats()
    server_cpu = after["cpu"] - before["cpu"]
    return Round(
        n=n,
        cpu=cpu,
        wall=wall,
        errors=tally.errors,
        api_errors=tally.api_errors,
        last_error=tally.last_error,
        server_requests=after["requests"] - before["requests"],
        server_refused=after["refused"] - before["refused"],
        server_connections=after["connections"] - before["connections"] - 1,  # our own stats call
        server_busy=server_cpu / wall if wall else 0.0,
        others_busy=max(0.0, machine - cpu - server_cpu) / wall if wall else 0.0,
    )


@contextmanager
def event_loop(kind: str) -> Iterator[asyncio.AbstractEventLoop]:
    """A new loop of the kind asked ("asyncio" or "uvloop"); ImportError if uvloop is missing."""
    if kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()
