"""The gateway benchmark's tables, its target ratios (issue 12) and its JSON file.

Standard library only: bench/conftest.py imports it to print the table at the end of a session.
Figures are medians over the interleaved rounds: µs of client CPU per request (all threads of
the client process) and requests/s. A ``*`` marks a figure taken while the server was busy 90 %
of the round or more: its requests/s are the server's pace, not the client's (the CPU per
request is still the client's). Targets are reported, never enforced.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[1] / ".results"
RESULTS_FILE = RESULTS_DIR / "gateway.json"  # full mode; short mode: gateway-short.json
SERVER_BOUND = 0.9
OTHERS_NOTED = 0.2  # cores used by other processes in a round that deserve a note
CONCURRENCY = (1, 8, 64)
TRANSPORTS = ("plain", "tls")
LOOPS = ("asyncio", "uvloop")


@dataclass
class Results:
    """What the session measured: one entry per cell, and the scaling run."""

    cells: list[dict[str, Any]] = field(default_factory=list)
    scaling: dict[str, Any] | None = None
    mode: str = "full"

    def add_cell(self, cell: dict[str, Any]) -> None:
        self.cells = [
            c for c in self.cells if (c["transport"], c["c"]) != (cell["transport"], cell["c"])
        ]
        self.cells.append(cell)


RESULTS = Results()


@dataclass(frozen=True)
class Row:
    """One client in one cell, summarised over its rounds."""

    cpu_us: float
    rps: float
    n: int
    rounds: int
    errors: int
    api_errors: int
    server_busy: float
    others_busy: float
    reconnects: int
    extra_requests: int
    last_error: str

    @property
    def server_bound(self) -> bool:
        return self.server_busy >= SERVER_BOUND


def summarise(rounds: list[dict[str, Any]]) -> Row:
    return Row(
        cpu_us=statistics.median(r["cpu"] / r["n"] * 1e6 for r in rounds),
        rps=statistics.median(r["n"] / r["wall"] for r in rounds),
        n=min(r["n"] for r in rounds),
        rounds=len(rounds),
        errors=sum(r["errors"] for r in rounds),
        api_errors=sum(r["api_errors"] for r in rounds),
        server_busy=statistics.median(r["server_busy"] for r in rounds),
        others_busy=statistics.median(r.get("others_busy", 0.0) for r in rounds),
        reconnects=sum(max(0, r["server_connections"]) for r in rounds),
        extra_requests=sum(r["server_requests"] - r["n"] for r in rounds),
        last_error=next((r["last_error"] for r in reversed(rounds) if r["last_error"]), ""),
    )


def table(results: Results) -> dict[str, dict[int, dict[str, Row]]]:
    """transport -> c -> "loop/client" -> Row."""
    out: dict[str, dict[int, dict[str, Row]]] = {}
    for cell in results.cells:
        rows = {key: summarise(rounds) for key, rounds in cell["results"].items() if rounds}
        out.setdefault(cell["transport"], {})[cell["c"]] = rows
    return out


def skipped(results: Results) -> dict[str, str]:
    """ "loop/client" -> why it did not run (the first reason seen)."""
    reasons: dict[str, str] = {}
    for cell in results.cells:
        for key, reason in cell.get("skipped", {}).items():
            reasons.setdefault(key, reason)
    return reasons


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Goal:
    what: str
    value: float | None  # None: a figure is missing (its client skipped)
    goal: str
    met: bool | None
    unit: str = "x"

    def line(self) -> str:
        if self.value is None:
            return f"{self.what:<66} {'-':>9} {self.goal:>10}  not measured"
        shown = f"{self.value:>8.2f}x" if self.unit == "x" else f"{self.value:>9,.0f}"
        return f"{self.what:<66} {shown} {self.goal:>10}  {'met' if self.met else 'NOT MET'}"


def _ratio(what: str, rows: dict[str, Row], mine: str, peer: str, limit: float) -> Goal:
    """CPU per request of mine over peer's; lower is better, limit is a maximum."""
    if mine not in rows or peer not in rows:
        return Goal(what, None, f"<= {limit:g}x", None)
    ratio = rows[mine].cpu_us / rows[peer].cpu_us
    return Goal(what, ratio, f"<= {limit:g}x", ratio <= limit)


def targets(results: Results) -> dict[str, list[Goal]]:
    """Issue 12's targets, per transport (plain is where they are set; TLS beside them)."""
    grid = table(results)
    out: dict[str, list[Goal]] = {}
    for transport in TRANSPORTS:
        cells = grid.get(transport)
        if not cells:
            continue
        found: list[Goal] = []
        top = cells.get(64, {})
        for loop in LOOPS:
            found.append(_ratio(
                f"fast async (vpseal pyreqwest) c=64 vs raw floor, {loop}",
                top, f"{loop}/vpseal-pyreqwest", f"{loop}/floor", 2.5,
            ))  # fmt: skip
            found.append(_ratio(
                f"fast async c=64 vs pyreqwest by hand, {loop}",
                top, f"{loop}/vpseal-pyreqwest", f"{loop}/pyreqwest", 1.2,
            ))  # fmt: skip
        # per core: 1 / CPU per request (the measured req/s also wait on the server and on
        # wake-ups across cores; the table shows them)
        fast = top.get("uvloop/vpseal-pyreqwest")
        per_core = 1e6 / fast.cpu_us if fast else None
        found.append(
            Goal(
                "fast async c=64 cash-outs/s per client core (1e6 / µs), uvloop",
                per_core,
                ">= 8,000",
                per_core >= 8000 if per_core else None,
                "/s",
            )
        )
        for c in (8, 64):
            rows = cells.get(c, {})
            found.append(_ratio(
                f"fast sync (vpseal pyreqwest) vs httpx.Client by hand, c={c}",
                rows, "threads/vpseal-pyreqwest", "threads/httpx", 0.25,
            ))  # fmt: skip
            for loop in (*LOOPS, "threads"):
                kind = "sync" if loop == "threads" else f"async {loop}"
                found.append(_ratio(
                    f"vpseal httpx vs hand-written httpx+cryptography, {kind}, c={c}",
                    rows, f"{loop}/vpseal-httpx", f"{loop}/hand-httpx", 1.0,
                ))  # fmt: skip
        for loop in (*LOOPS, "threads"):
            row = top.get(f"{loop}/vpseal-httpx")
            found.append(
                Goal(
                    f"transport errors, vpseal httpx {loop} c=64 over {row.rounds if row else 0} "
                    "rounds",
                    float(row.errors) if row else None,
                    "== 0",
                    row.errors == 0 if row else None,
                    "n",
                )
            )
        out[transport] = found
    return out


# ---------------------------------------------------------------- rendering


def _figure(row: Row | None) -> str:
    if row is None:
        return f"{'-':>17}"
    mark = "*" if row.server_bound else " "
    bad = "!" if row.errors or row.api_errors else " "
    return f"{row.cpu_us:>6,.0f} |{row.rps:>7,.0f}{mark}{bad}"


def render(results: Results) -> list[str]:
    grid = table(results)
    if not grid:
        return []
    lines = [
        "",
        f"gateway benchmark ({results.mode} mode): client CPU per request (µs) | requests/s, "
        "median of rounds",
        f"  * server busy >= {SERVER_BOUND:.0%} (req/s are the server's pace)   "
        "! errors (see notes)",
    ]
    first = results.cells[0]
    pinned = first.get("pinned", {})
    lines.append(
        f"  client pinned to CPU {pinned.get('client')}, server to CPU {pinned.get('server')}"
        + (", both at raised priority (nice -10)" if first.get("boosted") else "")
        + f"; server: {first.get('server', '?')}"
    )
    for transport in TRANSPORTS:
        cells = grid.get(transport)
        if not cells:
            continue
        concurrency = [c for c in CONCURRENCY if c in cells]
        keys = sorted({k for rows in cells.values() for k in rows}, key=_key_order)
        lines.append("")
        lines.append(
            f"{'TLS 1.3' if transport == 'tls' else 'plain HTTP'}: {'client':<26}"
            + "".join(f"{'c=' + str(c):>19}" for c in concurrency)
        )
        for key in keys:
            lines.append(
                f"  {key:<36}" + "".join(f"  {_figure(cells[c].get(key))}" for c in concurrency)
            )
        plan = next(cell["plan"] for cell in results.cells if cell["transport"] == transport)
        lines.append(
            f"  (up to {plan['n']} requests per round, {plan['rounds']} round(s), warm-up "
            f">= {plan['warmup']}; slow clients: about {plan['budget']} s of CPU per round, "
            f">= {plan['min_n']} requests)"
        )
    for transport, found in targets(results).items():
        lines.append("")
        lines.append(f"issue 12 targets, {'TLS' if transport == 'tls' else 'plain HTTP'}:")
        lines.extend("  " + t.line() for t in found)
    lines.extend(_notes(results, grid))
    lines.extend(_scaling_lines(results.scaling))
    return lines


def _key_order(key: str) -> tuple[int, int]:
    loop, _, client = key.partition("/")
    clients = ["floor", "pyreqwest", "aiohttp", "httpx", "hand-httpx", "vpseal-httpx",
               "vpseal-pyreqwest"]  # fmt: skip
    loops = [*LOOPS, "threads"]
    return (
        loops.index(loop) if loop in loops else 9,
        clients.index(client) if client in clients else 99,
    )


def _notes(results: Results, grid: dict[str, dict[int, dict[str, Row]]]) -> list[str]:
    notes = []
    for transport, cells in grid.items():
        for c, rows in sorted(cells.items()):
            for key, row in sorted(rows.items(), key=lambda kv: _key_order(kv[0])):
                parts = []
                if row.errors:
                    parts.append(f"{row.errors} transport errors (last: {row.last_error})")
                if row.api_errors:
                    parts.append(f"{row.api_errors} answers with code != 0")
                if row.extra_requests:
                    parts.append(f"{row.extra_requests} requests beyond those measured (retries)")
                if row.reconnects:
                    parts.append(
                        f"{row.reconnects} connections opened while measured (growth, reconnects)"
                    )
                if parts:
                    notes.append(f"  {transport} c={c} {key}: " + "; ".join(parts))
    loaded = [
        r.get("others_busy", 0.0) for cell in results.cells for rs in cell["results"].values()
        for r in rs
    ]  # fmt: skip
    if loaded and max(loaded) >= OTHERS_NOTED:
        share = sum(x >= OTHERS_NOTED for x in loaded) / len(loaded)
        notes.append(
            f"  other processes on this machine used >= {OTHERS_NOTED} cores in {share:.0%} of "
            f"the rounds (max {max(loaded):.2f} cores, median {statistics.median(loaded):.2f}): "
            "those rounds are slower and noisier than a quiet machine's"
        )
    for cell in results.cells:
        for key, reason in cell.get("failed", {}).items():
            notes.append(f"  FAILED {cell['transport']} c={cell['c']} {key}: {reason}")
    for key, reason in sorted(skipped(results).items()):
        notes.append(f"  skipped {key}: {reason}")
    return ["", "notes:", *notes] if notes else []


def _scaling_lines(scaling: dict[str, Any] | None) -> list[str]:
    if not scaling:
        return []
    lines = [
        "",
        f"many cores: 1 vs 2 client processes ({scaling['cpus']} CPUs, c={scaling['c']} each, "
        f"{scaling['loop']}, server --no-verify on uvloop sharing the CPUs; "
        f"{scaling['duration']:g} s x {scaling['rounds']} round(s))",
    ]
    for name, found in scaling["clients"].items():
        if "skipped" in found:
            lines.append(f"  {name}: skipped: {found['skipped']}")
            continue
        one, two = found["one"], found["two"]
        lines.append(
            f"  {name:<18} 1 process {one['rps']:>7,.0f}/s ({one['client_cpu_us']:.0f} µs, "
            f"clients {one['client_cores']:.2f} + server {one['server_cores']:.2f} cores)   "
            f"2 processes {two['rps']:>7,.0f}/s ({two['client_cpu_us']:.0f} µs, "
            f"clients {two['client_cores']:.2f} + server {two['server_cores']:.2f} cores)"
        )
        ratio = found["throughput_ratio"]
        lines.append(
            f"  {'':<18} throughput 2 vs 1: {ratio:.2f}x (target >= 1.8x on 2 free cores: "
            f"{'met' if ratio >= 1.8 else 'NOT MET'}); CPU per request 2 vs 1: "
            f"{found['cpu_per_request_ratio']:.2f}x"
        )
    return lines


# ---------------------------------------------------------------- the JSON file


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    from importlib.metadata import PackageNotFoundError, version

    for name in ("vpseal", "httpx", "httpcore", "pyreqwest", "aiohttp", "uvloop", "cryptography",
                 "sniffio"):  # fmt: skip
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if "model name" in line), "")
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "versions": versions,
    }


def results_file(results: Results) -> Path:
    """Short runs (CI) never overwrite the full figures the README quotes."""
    if results.mode == "full":
        return RESULTS_FILE
    return RESULTS_FILE.with_name(f"gateway-{results.mode}.json")


def write_json(results: Results, path: Path | None = None) -> Path:
    """The table, the targets and every round, for the README to quote. The directory is
    made with a .gitignore of its own, so nothing in it is ever committed by accident."""
    path = results_file(results) if path is None else path
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    grid = table(results)
    doc = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": results.mode,
        "environment": environment(),
        "summary": {
            transport: {
                str(c): {
                    key: row.__dict__ | {"server_bound": row.server_bound}
                    for key, row in rows.items()
                }
                for c, rows in cells.items()
            }
            for transport, cells in grid.items()
        },
        "targets": {
            transport: [t.__dict__ for t in found] for transport, found in targets(results).items()
        },
        "skipped": skipped(results),
        "scaling": results.scaling,
        "cells": results.cells,
        "table": render(results),
    }
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return path
