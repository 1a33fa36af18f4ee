"""Many cores: the same async client in 1 process vs 2 processes, against one server.

    cd bench && python -m gateway.scaling [--duration 3 --rounds 3 --c 64]

Each client process is forked first and creates its client (and its event loop: uvloop where
it is importable) after the fork, as the recipe for one client per process says; all of them
start sending together (a barrier) and send for a fixed time. The server runs with
``--no-verify`` on uvloop so that it is as cheap as it can be, but it still needs CPU: on a
2-core machine it shares the cores with the clients, so 2 client processes cannot get 2 whole
cores. Reported for each run:

- requests/s of all client processes together (the throughput ratio 2 vs 1 is the headline);
- client CPU per request in each case (equal: the processes share nothing but the machine);
- the clients' and the server's CPU use (cores busy), which says where the cores went.

Nothing is pinned here: the OS shares the cores out as it would in production.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from typing import Any

from gateway.clients import ASYNC_DRIVERS, AsyncDriver, Skip, Target
from gateway.harness import SHORT, ServerProcess, Tally, boost, cpus, event_loop

DRIVERS = {cls.name: cls for cls in ASYNC_DRIVERS}


async def _send_until(
    driver: AsyncDriver, c: int, deadline: float, prefix: str
) -> tuple[int, Tally]:
    """c tasks sending one request at a time until the deadline; returns requests answered."""
    tally = Tally()
    done = 0

    async def worker(slot: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            try:
                code = await driver.one(slot, f"{prefix}{slot}-{i}")
            except Exception as exc:
                tally.failed(exc)
            else:
                done += 1
                if code != 0:
                    tally.refused()

    await asyncio.gather(*(worker(slot) for slot in range(c)))
    return done, tally


def _child(
    name: str, target: Target, loop_name: str, duration: float, warmup: float,
    barrier: Barrier, out: Connection,
) -> None:  # fmt: skip
    """One client process: build the client here, after the fork; warm up; wait; measure."""
    boost()
    try:
        with event_loop(loop_name) as loop:
            asyncio.set_event_loop(loop)
            driver = DRIVERS[name](target)
            loop.run_until_complete(driver.start())
            prefix = f"s{os.getpid()}-"
            loop.run_until_complete(
                _send_until(driver, target.c, time.perf_counter() + warmup, prefix + "w")
            )
            barrier.wait(timeout=60)
            cpu, wall = time.process_time(), time.perf_counter()
            n, tally = loop.run_until_complete(
                _send_until(driver, target.c, wall + duration, prefix + "m")
            )
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            loop.run_until_complete(driver.close())
        out.send({"n": n, "cpu": cpu, "wall": wall, "errors": tally.errors,
                  "api_errors": tally.api_errors, "last_error": tally.last_error})  # fmt: skip
    except Skip as skip:
        barrier.abort()  # the others (and the parent) stop waiting
        out.send({"skip": str(skip)})
    except Exception as exc:  # report, do not hang the parent
        barrier.abort()
        out.send({"error": f"{type(exc).__name__}: {exc}"})


def run_processes(
    name: str, target: Target, server: ServerProcess, processes: int, loop_name: str,
    duration: float, warmup: float,
) -> dict[str, Any]:  # fmt: skip
    """One run with `processes` client processes; the totals and the server's share."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(processes + 1)
    pipes = [ctx.Pipe(duplex=False) for _ in range(processes)]
    children = [
        ctx.Process(
            target=_child,
            args=(name, target, loop_name, duration, warmup, barrier, send),
            daemon=True,
        )
        for _, send in pipes
    ]
    for child in children:
        child.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a child failed: it says why below
        barrier.wait(timeout=120)
    before, started = server.stats(), time.perf_counter()
    results = [receive.recv() for receive, _ in pipes]
    wall = time.perf_counter() - started
    after = server.stats()
    for child in children:
        child.join(timeout=30)
    for result in results:
        if "skip" in result:
            raise Skip(result["skip"])
        if "error" in result:
            raise RuntimeError(f"client process failed: {result['error']}")
    n = sum(r["n"] for r in results)
    cpu = sum(r["cpu"] for r in results)
    return {
        "processes": processes,
        "requests": n,
        "rps": sum(r["n"] / r["wall"] for r in results),
        "client_cpu_us": cpu / n * 1e6 if n else float("nan"),
        "client_cores": cpu / statistics.fmean(r["wall"] for r in results),
        "server_cores": (after["cpu"] - before["cpu"]) / wall,
        "errors": sum(r["errors"] for r in results),
        "api_errors": sum(r["api_errors"] for r in results),
        "server_requests": after["requests"] - before["requests"],
    }


def run_scaling(
    names: list[str], rounds: int, duration: float, c: int, loop_name: str | None = None
) -> dict[str, Any]:
    """For each client: interleaved rounds of 1 then 2 processes; medians and the ratios."""
    loop_name = loop_name or default_loop()
    warmup = min(1.0, duration / 2)
    out: dict[str, Any] = {
        "cpus": len(cpus()) or os.cpu_count(),
        "c": c,
        "loop": loop_name,
        "duration": duration,
        "rounds": rounds,
        "clients": {},
    }
    with ServerProcess(None, verify=False, loop="auto") as server:
        out["server"] = server.banner
        target = Target("127.0.0.1", server.port, c)
        for name in names:
            runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            try:
                for _ in range(rounds):
                    for processes in (1, 2):
                        run = run_processes(
                            name, target, server, processes, loop_name, duration, warmup
                        )
                        runs[processes].append(run)
            except Skip as skip:
                out["clients"][name] = {"skipped": str(skip)}
                continue
            one, two = (_median_run(runs[p]) for p in (1, 2))
            out["clients"][name] = {
                "one": one, "two": two, "runs": runs,
                "throughput_ratio": two["rps"] / one["rps"],
                "cpu_per_request_ratio": two["client_cpu_us"] / one["client_cpu_us"],
            }  # fmt: skip
    return out


def default_loop() -> str:
    """uvloop, what a gateway would run, if it is importable; asyncio's loop otherwise."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("rps", "client_cpu_us", "client_cores", "server_cores")
    merged = {k: statistics.median(r[k] for r in runs) for k in keys}
    merged["errors"] = sum(r["errors"] for r in runs)
    merged["api_errors"] = sum(r["api_errors"] for r in runs)
    return merged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", nargs="*", default=["vpseal-pyreqwest", "pyreqwest"])
    parser.add_argument("--rounds", type=int, default=1 if SHORT else 3)
    parser.add_argument("--duration", type=float, default=1.0 if SHORT else 3.0)
    parser.add_argument("--c", type=int, default=64)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default=None)
    args = parser.parse_args(argv)
    result = run_scaling(args.clients, args.rounds, args.duration, args.c, args.loop)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
