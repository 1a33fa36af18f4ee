"""The instruction-count gate: run the workers under callgrind, compare with the baseline.

See bench/callgrind/__init__.py for the design and the commands.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ops import ENGINES, PEER_OF, Op, all_ops, calls

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BASELINE = HERE / "baseline.json"
HISTORY = HERE / "history.jsonl"
RESULTS = ROOT / "bench" / ".results" / "callgrind.json"
WORKER = HERE / "worker.py"

N = 60  # calls of a single-request operation in the first loop (2N in the second)
# Fail when an operation costs more than this over its baseline (measured spread between
# identical runs: see README "Instruction-count gate"); warn on any shift above WARN.
FAIL_ABOVE = 0.03
WARN_ABOVE = 0.01

# What the counts depend on: a change here makes the gate warn instead of fail.
FINGERPRINT_KEYS = (
    "python", "libcrypto", "cffi", "pycryptodome", "valgrind", "compiler", "cpu", "cpu_flags",
)  # fmt: skip
CPU_FLAGS = ("aes", "pclmulqdq", "avx", "avx2", "avx512f", "vaes", "vpclmulqdq", "sha_ni", "bmi2")


@dataclass
class Row:
    key: str
    op: Op
    now: float
    base: float | None
    verdict: str
    peer: float | None


def _version(module: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


def fingerprint(python: str) -> dict[str, Any]:
    """The environment the counts were taken in (of the Python that runs the workers)."""
    code = (
        "import json, platform, sys, sysconfig, vpseal\n"
        "print(json.dumps({'python': platform.python_implementation() + ' ' + sys.version,"
        " 'libcrypto': vpseal.openssl_version(), 'cc': sysconfig.get_config_var('CC')}))"
    )
    env = dict(os.environ, VPSEAL_BACKEND="native")
    info = json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True,
                                     check=True, env=env).stdout)  # fmt: skip
    cc = (info.pop("cc") or "cc").split()[0]
    model, flags = None, set()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        if m := re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M):
            model = m.group(1).strip()
        if m := re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M):
            flags = set(m.group(1).split())
    except OSError:
        pass
    return {
        **info,
        "cffi": _version("cffi"),
        "pycryptodome": _version("pycryptodome"),
        "cryptography": _version("cryptography"),  # a peer only: not compared
        "valgrind": _first_line(["valgrind", "--version"]),
        "compiler": _first_line([cc, "--version"]),
        "cpu": model or platform.machine(),
        # valgrind's CPUID hides AVX-512 and VAES whatever the host has; these are the host's
        "cpu_flags": " ".join(f for f in CPU_FLAGS if f in flags),
    }


def _summary(path: Path) -> int:
    with path.open() as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise ValueError(f"{path}: no summary line")


def _start(
    python: str, engine: str, n: int, keys: list[str], work: Path
) -> subprocess.Popen[bytes]:
    """One engine's worker under callgrind, its dumps in work/engine."""
    out = work / engine
    out.mkdir()
    env = dict(os.environ, VPSEAL_BACKEND=engine, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    cmd = [
        "valgrind", "--tool=callgrind", "--dump-before=adler32", "--dump-line=no",
        f"--callgrind-out-file={out}/cg.%p", "--log-file=" + str(out / "valgrind.log"),
        python, str(WORKER), engine, str(n), str(out / "keys.json"), *keys,
    ]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _collect(out: Path, n: int, ops: dict[str, Op]) -> dict[str, float]:
    done = json.loads((out / "keys.json").read_text())
    dumps = sorted(out.glob("cg.*.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    if len(dumps) != 3 * len(done):
        raise RuntimeError(
            f"{out}: {len(dumps)} callgrind dumps for {len(done)} operations (want 3 each): "
            "something measured calls the marker (zlib.adler32)?"
        )
    counts = {}
    for i, key in enumerate(done):
        op = ops[key]
        first, second = _summary(dumps[3 * i + 1]), _summary(dumps[3 * i + 2])
        counts[key] = (second - first) / calls(op, n) / op.per
    return counts


def measure(python: str, n: int, only: Iterable[str] | None = None) -> dict[str, float]:
    """Instructions per request of every (or the chosen) operation: one valgrind process per
    engine, both at once."""
    ops = {op.key: op for op in all_ops()}
    chosen = [k for k in ops if only is None or k in set(only)]
    counts: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vpseal-callgrind-") as tmp:
        running = []
        for engine in ENGINES:
            keys = [k for k in chosen if ops[k].process == engine]
            if not keys:
                continue
            running.append((_start(python, engine, n, keys, Path(tmp)), Path(tmp) / engine, engine))
        for proc, out, engine in running:
            output = proc.communicate()[0].decode(errors="replace")
            if proc.returncode != 0:
                log = (out / "valgrind.log").read_text(errors="replace")
                raise RuntimeError(f"{engine} worker failed ({proc.returncode}):\n{output}\n{log}")
            counts.update(_collect(out, n, ops))
    return counts


def compare(
    counts: dict[str, float], baseline: dict[str, Any] | None, fp: dict[str, Any], n: int
) -> tuple[list[Row], list[str], bool]:
    """(rows, notes, failed)."""
    ops = {op.key: op for op in all_ops()}
    base_counts = baseline["counts"] if baseline else {}
    notes: list[str] = []
    same_env = True
    if baseline is None:
        notes.append("no baseline: nothing is gated (make one with --update)")
    else:
        changed = [k for k in FINGERPRINT_KEYS if baseline["fingerprint"].get(k) != fp.get(k)]
        if baseline.get("n") != n:
            same_env = False
            notes.append(
                f"WARNING: N={n} but the baseline was counted with N={baseline.get('n')} "
                "(one-off costs spread differently): only warnings"
            )
        if changed:
            same_env = False
            for k in changed:
                notes.append(
                    f"WARNING: {k} differs from the baseline's ({baseline['fingerprint'].get(k)!r}"
                    f" -> {fp.get(k)!r}): counts are compared but only warn; re-baseline on "
                    "this environment (python -m bench.callgrind --update)"
                )
    rows: list[Row] = []
    failed = False
    for key, now in counts.items():
        op = ops[key]
        base = base_counts.get(key)
        peer = None
        if op.gated:
            names = [f"{op.group} [{PEER_OF[op.impl]}]", f"{op.group} [hashlib]"]
            peer = next((counts[p] for p in names if p in counts), None)
        if base is None:
            verdict = "new (not in baseline)" if baseline else "-"
        elif not op.gated:
            verdict = "peer (not gated)"
        else:
            change = now / base - 1
            if change > FAIL_ABOVE:
                verdict = "FAIL" if same_env else "warn: slower (other environment)"
                failed = failed or same_env
            elif change > WARN_ABOVE:
                verdict = "warn: slower"
            elif change < -WARN_ABOVE:
                verdict = "improved: re-baseline"
            else:
                verdict = "ok"
        rows.append(Row(key, op, now, base, verdict, peer))
    missing = [k for k in base_counts if k not in counts]
    if missing and len(counts) == len(ops):
        notes.append("in the baseline but not measured: " + ", ".join(missing))
    return rows, notes, failed


def _k(x: float) -> str:
    return f"{x / 1000:,.1f}k"


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| operation | impl | baseline | now | change | verdict | vpseal / peer |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        change = f"{(r.now / r.base - 1) * 100:+.2f} %" if r.base else ""
        ratio = ""
        if r.peer:
            peer_name = "hashlib" if r.op.group == "signature" else PEER_OF[r.op.impl]
            ratio = f"{r.now / r.peer:.2f}x {peer_name}"
        base = _k(r.base) if r.base else ""
        lines.append(
            f"| {r.op.group} | {r.op.impl} | {base} | {_k(r.now)} | {change} | {r.verdict} "
            f"| {ratio} |"
        )
    return lines


def _commit() -> str | None:
    return _first_line(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"])


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bench.callgrind",
        description="Instructions per operation under callgrind, gated against a baseline.",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="write the counts as the new baseline (review it in the diff)",
    )
    parser.add_argument(
        "--record", action="store_true", help="append one line to the history file (CI on main)"
    )
    parser.add_argument(
        "--ops", default=None, help="only the operations whose key matches this regex"
    )
    parser.add_argument("-n", type=int, default=N, help=f"calls in the first loop ({N})")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--history", type=Path, default=HISTORY)
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter to measure (default: this one)")  # fmt: skip
    args = parser.parse_args(argv)

    if shutil.which("valgrind") is None:
        print("error: valgrind not found (scripts/perf_gate.sh installs it)", file=sys.stderr)
        return 2
    only = None
    if args.ops:
        only = [op.key for op in all_ops() if re.search(args.ops, op.key)]
        if not only:
            print(f"error: no operation matches {args.ops!r}", file=sys.stderr)
            return 2
    started = time.monotonic()
    fp = fingerprint(args.python)
    counts = measure(args.python, args.n, only)
    seconds = time.monotonic() - started
    baseline = json.loads(args.baseline.read_text()) if args.baseline.exists() else None
    rows, notes, failed = compare(counts, baseline, fp, args.n)

    result = {
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "n": args.n,
        "fingerprint": fp,
        "counts": {k: round(v, 1) for k, v in counts.items()},
        "failed": failed,
        "seconds": round(seconds, 1),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1) + "\n")
    if args.update:
        merged = dict(baseline["counts"]) if baseline and only else {}
        merged.update(result["counts"])
        new = {"fingerprint": fp, "n": args.n, "commit": result["commit"],
               "date": result["date"], "counts": merged}  # fmt: skip
        args.baseline.write_text(json.dumps(new, indent=1) + "\n")
    if args.record:
        line = {
            "date": result["date"],
            "commit": result["commit"],
            "python": fp["python"].split()[1],
            "counts": {k: round(v) for k, v in counts.items()},
        }
        with args.history.open("a") as f:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")

    print()
    print(f"vpseal instructions per request (callgrind, N={args.n}/{2 * args.n} calls after "
          f"warm-up; fail above +{FAIL_ABOVE:.0%}, warn beyond ±{WARN_ABOVE:.1%}; "
          f"{seconds:.0f} s)")  # fmt: skip
    print()
    for row in table(rows):
        print(row)
    for note in notes:
        print(note)
    if args.update:
        print(f"baseline written: {args.baseline}")
    print(f"results: {args.results}")
    if failed:
        slower = [r.key for r in rows if r.verdict == "FAIL"]
        print(f"FAILED: more than +{FAIL_ABOVE:.0%} over the baseline: " + ", ".join(slower))
        return 1
    return 0
