"""One cell of the gateway matrix (one transport, one concurrency c) in a process of its own.

    cd bench && python -m gateway.cell --c 8 [--tls CERT KEY] [--n 2000 --rounds 4 --only KEY..]

Starts the server (pinned to the second CPU), pins itself to the first, starts every client
(async ones on asyncio's loop and on uvloop, sync ones on c threads), then runs interleaved
rounds: each round measures every client once, in an order rotated from round to round, so
that drift on the machine spreads over all of them. Prints one JSON document on stdout.

A process per cell keeps what one cell leaves behind (idle pools, Rust runtimes, a replay store
full of nonces) out of the next cell's numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, replace
from typing import Any

from gateway.clients import (
    ASYNC_DRIVERS,
    SYNC_DRIVERS,
    AsyncDriver,
    Skip,
    SyncDriver,
    Target,
)
from gateway.harness import (
    Plan,
    Round,
    ServerProcess,
    Tally,
    boost,
    layout,
    measure,
    pin,
    run_async,
)
from gateway.harness import event_loop as new_event_loop
from gateway.harness import run_sync as run_threads

LOOPS = ("asyncio", "uvloop")


class Entry:
    """A started client and how to run it: its loop (async) or its thread pool (sync)."""

    def __init__(self, loop_name: str, driver: AsyncDriver | SyncDriver) -> None:
        self.loop_name = loop_name
        self.driver = driver
        self.rounds: list[Round] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pool: ThreadPoolExecutor | None = None

    @property
    def key(self) -> str:
        return f"{self.loop_name}/{self.driver.name}"

    def runner(self, c: int) -> Callable[[int, str], Tally]:
        driver = self.driver
        if self.loop is not None:
            loop = self.loop
            return lambda n, prefix: loop.run_until_complete(run_async(driver, n, c, prefix))
        assert self.pool is not None
        pool = self.pool
        return lambda n, prefix: run_threads(driver, pool, n, c, prefix)


def start_all(
    target: Target, loops: dict[str, asyncio.AbstractEventLoop], only: set[str] | None
) -> tuple[list[Entry], dict[str, str], dict[str, str]]:
    """Every client that can run here; why each other one cannot (skipped: a library or an
    argument missing) or did not (failed: it raised while connecting or authenticating)."""
    entries: list[Entry] = []
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    candidates = [Entry(name, cls(target)) for name in loops for cls in ASYNC_DRIVERS]
    candidates += [Entry("threads", cls(target)) for cls in SYNC_DRIVERS]
    for entry in candidates:
        if only and entry.key not in only:
            continue
        try:
            if entry.loop_name in loops:
                loop = loops[entry.loop_name]
                asyncio.set_event_loop(loop)
                loop.run_until_complete(entry.driver.start())  # type: ignore[arg-type]
                entry.loop = loop
            else:
                entry.driver.start()
                entry.pool = ThreadPoolExecutor(target.c, thread_name_prefix=entry.key)
        except Skip as skip:
            skipped[entry.key] = str(skip)
            continue
        except Exception as exc:  # reported, and the rest of the cell still runs
            failed[entry.key] = f"{type(exc).__name__}: {exc}"[:500]
            continue
        entries.append(entry)
    return entries, skipped, failed


def close_all(entries: list[Entry]) -> None:
    for entry in entries:
        try:
            if entry.loop is not None:
                entry.loop.run_until_complete(entry.driver.close())  # type: ignore[arg-type]
            else:
                entry.driver.close()
        except Exception as exc:  # a client failing to close must not lose the measurements
            print(f"closing {entry.key}: {exc!r}", file=sys.stderr)
        if entry.pool is not None:
            entry.pool.shutdown(wait=True)


def run_cell(
    c: int, cert: tuple[str, str] | None, plan: Plan, only: set[str] | None = None
) -> dict[str, Any]:
    plan = plan.for_concurrency(c)
    client_cpu, server_cpu = layout()
    pid = os.getpid()
    with ServerProcess(cert, cpu=server_cpu) as server:
        client_pinned = pin(pid, client_cpu)
        boosted = boost() and server.boosted  # before any client starts a thread
        target = Target("127.0.0.1", server.port, c, cert[0] if cert else None)
        loops: dict[str, asyncio.AbstractEventLoop] = {}
        skipped: dict[str, str] = {}
        with ExitStack() as stack:
            for name in LOOPS:
                try:
                    loops[name] = stack.enter_context(new_event_loop(name))
                except ImportError as exc:
                    for cls in ASYNC_DRIVERS:
                        skipped[f"{name}/{cls.name}"] = f"{name} is not importable ({exc})"
            started = time.perf_counter()
            entries, more_skipped, failed = start_all(target, loops, only)
            skipped.update(more_skipped)
            try:
                for r in range(plan.rounds):
                    shift = r % max(1, len(entries))
                    for entry in entries[shift:] + entries[:shift]:
                        if entry.loop is not None:
                            asyncio.set_event_loop(entry.loop)
                        tag = f"{pid}-{entry.key}-{r}"
                        entry.rounds.append(measure(entry.runner(c), server, plan, c, tag))
            finally:
                close_all(entries)
        return {
            "transport": "tls" if cert else "plain",
            "c": c,
            "plan": asdict(plan),
            "server": server.banner,
            "boosted": boosted,
            "pinned": {
                "client": client_cpu if client_pinned else None,
                "server": server_cpu if server.pinned else None,
            },
            "seconds": time.perf_counter() - started,
            "results": {e.key: [r.as_dict() for r in e.rounds] for e in entries},
            "skipped": skipped,
            "failed": failed,
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--c", type=int, required=True)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    default = Plan.default()
    parser.add_argument("--n", type=int, default=default.n)
    parser.add_argument("--warmup", type=int, default=default.warmup)
    parser.add_argument("--rounds", type=int, default=default.rounds)
    parser.add_argument("--budget", type=float, default=default.budget)
    parser.add_argument("--only", nargs="*", help="keys such as uvloop/floor threads/httpx")
    args = parser.parse_args(argv)
    plan = replace(
        default, n=args.n, warmup=args.warmup, rounds=args.rounds, budget=args.budget,
        min_n=min(default.min_n, args.n),
    )  # fmt: skip
    cert = (args.tls[0], args.tls[1]) if args.tls else None
    result = run_cell(args.c, cert, plan, set(args.only) if args.only else None)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
