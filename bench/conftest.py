"""Benchmark support: every peer runs in the same session, and the end of the run prints the
ratios that the performance targets (DESIGN.md) are stated in, met or not.

Each benchmark sets ``benchmark.group`` and ``benchmark.extra_info["impl"]``; RATIOS below names
the pairs to compare. Short mode (VPSEAL_BENCH_SHORT=1, used by CI) runs a few rounds of each,
so that the benchmarks cannot rot; its ratios are rough.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SHORT = bool(os.environ.get("VPSEAL_BENCH_SHORT"))

# (what, group, impl measured, impl compared with, "speedup" | "time", target)
# "speedup": compared time / measured time, higher is better, target is a minimum.
# "time":    measured time / compared time, lower is better, target is a maximum.
# Every target only warns (NOT MET), except MUST_BEAT below. Gating is the instruction-count
# gate's job (bench/callgrind), which cannot flake; wall time here varies 10-40 % with load.
RATIOS: list[tuple[str, str, str, str, str, float]] = [
    (
        "native encrypt 64 B vs cryptography AESGCM",
        "encrypt 64 B",
        "native",
        "cryptography",
        "time",
        1.3,
    ),
    (
        "native decrypt 64 B vs cryptography AESGCM",
        "decrypt 64 B",
        "native",
        "cryptography",
        "time",
        1.3,
    ),
    (
        "fallback encrypt 64 B vs naive pycryptodome",
        "encrypt 64 B",
        "fallback",
        "pycryptodome-naive",
        "speedup",
        4.0,
    ),
    (
        "fallback decrypt 64 B vs naive pycryptodome",
        "decrypt 64 B",
        "fallback",
        "pycryptodome-naive",
        "speedup",
        4.0,
    ),
    (
        "native seal vs cryptography pipeline",
        "seal cash-out",
        "native",
        "cryptography-pipeline",
        "speedup",
        4.0,
    ),
    (
        "native open vs cryptography pipeline",
        "open cash-out",
        "native",
        "cryptography-pipeline",
        "speedup",
        4.0,
    ),
    (
        "fallback seal vs pycryptodome pipeline",
        "seal cash-out",
        "fallback",
        "pycryptodome-pipeline",
        "speedup",
        3.0,
    ),
    (
        "fallback open vs pycryptodome pipeline",
        "open cash-out",
        "fallback",
        "pycryptodome-pipeline",
        "speedup",
        3.0,
    ),
    (
        "native batch seal per request vs single",
        "seal per request",
        "native-batch",
        "native",
        "time",
        0.6,
    ),
    (
        "native batch open per request vs single",
        "open per request",
        "native-batch",
        "native",
        "time",
        0.6,
    ),
    (
        "memory guard: open vs window-only open",
        "open with replay check",
        "memory-guard",
        "window-only",
        "time",
        1.375,  # adds <= 1.5 us to an open of about 4.0 us (issue 9)
    ),
    (
        "memory guard, 2 generations: open vs window-only",
        "open with replay check",
        "memory-guard-2-generations",
        "window-only",
        "time",
        1.375,
    ),
    (
        "memory guard vs a plain-dict check (open)",
        "open with replay check",
        "memory-guard",
        "user-dict",
        "time",
        1.1,
    ),
    (
        "native batch seal: 2 threads vs 1 thread",
        "batch seal threads",
        "2-threads",
        "1-thread",
        "speedup",
        1.7,
    ),
    (
        "native batch open: 2 threads vs 1 thread",
        "batch open threads",
        "2-threads",
        "1-thread",
        "speedup",
        1.7,
    ),
]


# The one guard that fails the run even on wall time (issue 13 item 2): vpseal slower than the
# hand-written pipeline it is sold against. Only comparisons with a margin far beyond the
# noise (measured: 2.5-2.6x for native vs the cryptography pipeline, 6-12x for the fallback vs
# pycryptodome), so that a loaded machine cannot flip them; they fail when the ratio drops
# below 1.0 (not when the aspirational target above is missed).
MUST_BEAT = {
    "native seal vs cryptography pipeline",
    "native open vs cryptography pipeline",
    "fallback seal vs pycryptodome pipeline",
    "fallback open vs pycryptodome pipeline",
    "fallback encrypt 64 B vs naive pycryptodome",
    "fallback decrypt 64 B vs naive pycryptodome",
}


# (what, group, impl, most seconds per item): targets that are a time, not a ratio.
_OWN = "client own work per cash-out"
LIMITS: list[tuple[str, str, str, float]] = [
    ("vpseal own work per cash-out, sync (no I/O)", _OWN, "sync", 15e-6),
    ("vpseal own work per cash-out, async (no I/O)", _OWN, "async", 15e-6),
]


def _best_seconds(bench: Any) -> float:
    per = bench.extra_info.get("per", 1)
    return float(bench.stats.min) / per


def _openssl_speed_16k() -> tuple[float, str] | None:
    """bytes/s of `openssl speed -evp aes-256-gcm` at 16 KiB, and the CLI's version text."""
    try:
        version = subprocess.run(
            ["openssl", "version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        out = subprocess.run(
            ["openssl", "speed", "-evp", "aes-256-gcm", "-bytes", "16384", "-seconds", "1"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"^AES-256-GCM\s+([\d.]+)k", out, re.M)
    return (float(match.group(1)) * 1000, version) if match else None


def _gateway_summary(terminalreporter: Any) -> None:
    """The gateway benchmark's table and targets (bench/test_gateway.py), if it ran."""
    from gateway import report

    lines = report.render(report.RESULTS)
    for line in lines:
        terminalreporter.write_line(line)
    if lines:
        terminalreporter.write_line(f"(and in {report.results_file(report.RESULTS)})")


def _times(config: pytest.Config) -> dict[tuple[str, str], float]:
    """Best seconds per item of every benchmark that ran, by (group, impl)."""
    session = getattr(config, "_benchmarksession", None)
    times: dict[tuple[str, str], float] = {}
    for bench in session.benchmarks if session is not None else ():
        if bench.stats:
            times[(bench.group, bench.extra_info.get("impl", bench.name))] = _best_seconds(bench)
    return times


def _slower_than_peer(times: dict[tuple[str, str], float]) -> list[tuple[str, float]]:
    """The MUST_BEAT comparisons that vpseal lost (what, how many times the peer's time)."""
    lost = []
    for what, group, mine, peer, _, _ in RATIOS:
        if what in MUST_BEAT and (group, mine) in times and (group, peer) in times:
            slower = times[(group, mine)] / times[(group, peer)]
            if slower > 1.0:
                lost.append((what, slower))
    return lost


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _slower_than_peer(_times(session.config)) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    _gateway_summary(terminalreporter)
    times = _times(config)
    if not times:
        return
    write = terminalreporter.write_line
    write("")
    write(
        "vpseal performance ratios (best of rounds; "
        + ("SHORT mode: rough" if SHORT else "full")
        + ")"
    )
    write(f"{'comparison':<52} {'ratio':>8} {'target':>10}  verdict")
    for what, group, mine, peer, kind, target in RATIOS:
        if (group, mine) not in times or (group, peer) not in times:
            continue
        a, b = times[(group, mine)], times[(group, peer)]
        if kind == "speedup":
            ratio, goal, met = b / a, f">= {target:g}x", b / a >= target
        else:
            ratio, goal, met = a / b, f"<= {target:g}x", a / b <= target
        verdict = "met" if met else "NOT MET"
        if what in MUST_BEAT:
            verdict += ", beats the peer (must)" if b > a else ", SLOWER THAN THE PEER: FAILS"
        write(f"{what:<52} {ratio:>7.2f}x {goal:>10}  {verdict}")
    for what, group, impl, limit in LIMITS:
        if (group, impl) in times:
            spent = times[(group, impl)]
            verdict = "met" if spent <= limit else "NOT MET"
            goal = f"<= {limit * 1e6:g}us"
            write(f"{what:<52} {spent * 1e6:>6.1f}us {goal:>10}  {verdict}")
    big = times.get(("encrypt 1 MiB", "native"))
    if big is not None:
        speed = _openssl_speed_16k()
        if speed is not None:
            rate, version = speed
            mine = (1 << 20) / big
            share = mine / rate
            write(
                f"{'native 1 MiB encrypt vs openssl speed 16 KiB':<52} {share:>7.0%}"
                f"  {'>= 90%':>10}"
                f"  {'met' if share >= 0.9 else 'NOT MET'}"
                f"  ({mine / 1e9:.2f} vs {rate / 1e9:.2f} GB/s, {version})"
            )
    write("")
    write("time per call vs cryptography (best of rounds):")
    for group in sorted({g for g, _ in times}, key=_group_order):
        peer = times.get((group, "cryptography")) or times.get((group, "cryptography-pipeline"))
        row = [f"{impl}={t * 1e6:.2f}us" for (g, impl), t in sorted(times.items()) if g == group]
        ratio = ""
        if peer and (group, "native") in times:
            ratio = f"  native/peer={times[(group, 'native')] / peer:.2f}x"
        write(f"  {group:<22} " + "  ".join(row) + ratio)
    for what, slower in _slower_than_peer(times):
        write(f"FAILED: {what}: vpseal took {slower:.2f}x the time of the peer it must beat")


def _group_order(group: str) -> tuple[str, int]:
    units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20}
    match = re.search(r"(\d+) (B|KiB|MiB)$", group)
    if not match:
        return (group, 0)
    return (group[: match.start()], int(match.group(1)) * units[match.group(2)])
