"""Mutation testing of vpseal's core modules with cosmic-ray (see scripts/mutation.sh).

Each module is mutated in its own scratch copy of src/ and tests/ (never the working tree, so
an interrupted run leaves no mutant behind and modules can run side by side), one mutant at a
time, against only the test files mapped to it below (pytest -x: a killed mutant stops at the
first failing test). Mutants listed in tests/mutation/equivalent.txt are skipped and left out of
the score. The run exits 1 when a mutant that is not listed there survives.

Operators: a curated subset of cosmic-ray's (the classes of the issue: operator swaps,
boundary swaps of comparisons, negated conditions, +-1 on numbers, True/False, and/or,
break/continue, loops that run zero times, exception handlers that catch nothing). Cosmic-ray's
full cross product of binary operators (Add -> BitXor, ...) and its variable replacers add
thousands of mutants that say little; they are left out.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.txt"
REPORT = ROOT / "tests" / "mutation" / "REPORT.md"

# module -> (test files, in the order they run; extra environment)
MODULES: dict[str, tuple[list[str], dict[str, str]]] = {
    "wire": (["tests/test_wire.py", "tests/test_wire_base64.py", "tests/test_boundaries.py"], {}),
    "signing": (["tests/test_signing.py", "tests/test_boundaries.py"], {}),
    "replay": (["tests/test_replay_clock.py", "tests/test_replay.py"], {}),
    "envelope": (
        ["tests/test_boundaries.py", "tests/test_envelope.py", "tests/test_envelope_tamper.py"],
        {},
    ),
    "_client_core": (
        [
            "tests/test_settle_transitions.py",
            "tests/test_layers.py",
            "tests/test_client_config.py",
            "tests/test_boundaries.py",
            "tests/test_client_sync.py",
        ],
        {},
    ),
    "_fallback": (
        [
            "tests/test_layers.py",
            "tests/test_aead.py",
            "tests/test_vectors.py",
            "tests/test_engine_errors.py",
            "tests/test_backends.py",
        ],
        {"VPSEAL_BACKEND": "fallback"},
    ),
}

_BIN = r"ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Div|Mod_FloorDiv|Pow_Mul"
_BIN += r"|LShift_RShift|RShift_LShift|BitOr_BitAnd|BitAnd_BitOr|BitXor_BitOr)"
_CMP = r"ReplaceComparisonOperator_(Eq_NotEq|NotEq_Eq|Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Lt_GtE|GtE_Lt"
_CMP += r"|Gt_LtE|LtE_Gt|Is_IsNot|IsNot_Is|In_NotIn|NotIn_In)"
OPERATORS = re.compile(
    rf"core/({_BIN}|{_CMP}|ReplaceUnaryOperator_(USub_UAdd|Delete_Not)|AddNot|NumberReplacer"
    r"|ReplaceTrueWithFalse|ReplaceFalseWithTrue|ReplaceAndWithOr|ReplaceOrWithAnd"
    r"|ReplaceBreakWithContinue|ReplaceContinueWithBreak|ZeroIterationForLoop|ExceptionReplacer)$"
)


@dataclass
class Mutant:
    job_id: str
    module: str
    operator: str
    line: int
    text: str  # the mutated line, stripped
    nth: int  # which mutant of this operator on a line with this text
    outcome: str = ""  # killed, survived, timeout, equivalent, skipped
    diff: str = ""

    @property
    def key(self) -> str:
        return f"{self.module} | {self.operator} | {self.text} | {self.nth}"


@dataclass
class Result:
    module: str
    total: int = 0
    run: int = 0
    killed: int = 0
    equivalent: int = 0
    seconds: float = 0.0
    survivors: list[Mutant] = field(default_factory=list)
    error: str = ""

    @property
    def score(self) -> float:
        return 100.0 * self.killed / max(1, self.killed + len(self.survivors))


def load_equivalent() -> dict[str, str]:
    """key -> reason, from tests/mutation/equivalent.txt ("key | reason" lines)."""
    found: dict[str, str] = {}
    if not EQUIVALENT.exists():
        return found
    for raw in EQUIVALENT.read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = [p.strip() for p in raw.split(" | ")]
        if len(parts) < 5:
            raise SystemExit(f"{EQUIVALENT}: malformed line (want 5 fields): {raw}")
        found[" | ".join(parts[:4])] = " | ".join(parts[4:])
    return found


def scratch_copy(module: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=f"vpseal-mut-{module}-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(ROOT / "src", base / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", base / "tests", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", base / "pyproject.toml")
    return base


def pytest_command(tests: Iterable[str]) -> str:
    files = " ".join(t for t in tests if (ROOT / t).exists())
    return f"{sys.executable} -m pytest -x -q -p no:cacheprovider --no-header -o addopts= {files}"


def baseline(base: Path, command: str, env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run(command, shell=True, cwd=base, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise RuntimeError(f"the tests fail without any mutant:\n{tail}")
    return time.monotonic() - start


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the annotations are: under ``from __future__ import annotations`` (every module
    here) they are never evaluated, so a mutant inside one (``str | int`` -> ``str & int``)
    is equivalent by construction and is not counted."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        notes: list[ast.expr | None] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            notes.append(node.returns)
        elif isinstance(node, (ast.arg, ast.AnnAssign)):
            notes.append(node.annotation)
        for note in notes:
            if note is not None and note.end_lineno is not None and note.end_col_offset is not None:
                spans.append(
                    ((note.lineno, note.col_offset), (note.end_lineno, note.end_col_offset))
                )
    return spans


def mutants_of(session: Path, module: str, source: list[str]) -> list[Mutant]:
    from cosmic_ray.work_db import WorkDB, use_db

    found: list[Mutant] = []
    seen: dict[tuple[str, str], int] = {}
    notes = annotation_spans("\n".join(source) + "\n")
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in db.work_items:
            spec = item.mutations[0]
            start = tuple(spec.start_pos)
            if any(lo <= start < hi for lo, hi in notes):
                continue
            line = spec.start_pos[0]
            text = source[line - 1].strip()
            nth = seen.get((spec.operator_name, text), 0)
            seen[(spec.operator_name, text)] = nth + 1
            found.append(Mutant(item.job_id, module, spec.operator_name, line, text, nth))
    return found


def skip_all_but(session: Path, keep: set[str]) -> None:
    """Mark every other mutant of the session skipped (cosmic-ray exec then leaves it)."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        others = [item.job_id for item in db.work_items if item.job_id not in keep]
        db.set_multiple_results(others, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))


def run_module(module: str, args: argparse.Namespace, equivalent: dict[str, str]) -> Result:
    tests, extra = MODULES[module]
    result = Result(module)
    start = time.monotonic()
    base = scratch_copy(module)
    try:
        env = {
            **os.environ,
            **extra,
            "PYTHONPATH": str(base / "src"),
            "HYPOTHESIS_PROFILE": args.hypothesis_profile,
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        command = pytest_command(tests)
        took = baseline(base, command, env)
        path = base / "src" / "vpseal" / f"{module}.py"
        config = base / "cr.toml"
        config.write_text(
            "[cosmic-ray]\n"
            f'module-path = "{path}"\n'
            f"timeout = {max(20.0, 4 * took):.0f}\n"
            "excluded-modules = []\n"
            f"test-command = {json.dumps(command)}\n"
            '[cosmic-ray.distributor]\nname = "local"\n'
        )
        session = base / "session.sqlite"
        cr = [str(Path(sys.executable).parent / "cosmic-ray")]
        subprocess.run(
            [*cr, "init", str(config), str(session)],
            cwd=base,
            env=env,
            check=True,
            capture_output=True,
        )
        source = path.read_text().splitlines()
        everything = mutants_of(session, module, source)
        chosen = [m for m in everything if OPERATORS.search(m.operator)]
        result.total = len(chosen)
        for m in chosen:
            if m.key in equivalent:
                m.outcome = "equivalent"
        live = [m for m in chosen if m.outcome != "equivalent"]
        result.equivalent = len(chosen) - len(live)
        if args.sample and len(live) > args.sample:
            rng = random.Random(f"{args.seed}:{module}")
            live = rng.sample(live, args.sample)
        keep = {m.job_id for m in live}
        skip_all_but(session, keep)
        result.run = len(live)
        proc = subprocess.run(
            [*cr, "exec", str(config), str(session)],
            cwd=base,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            result.error = proc.stderr[-2000:]
        dump = subprocess.run(
            [*cr, "dump", str(session)],
            cwd=base,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        by_id = {m.job_id: m for m in live}
        for row in dump.stdout.splitlines():
            item, res = json.loads(row)
            m = by_id.get(item["job_id"])
            if m is None or res is None:
                continue
            outcome = res.get("test_outcome")
            if outcome == "survived":
                m.outcome = "survived"
                m.diff = (res.get("diff") or "").strip()
                result.survivors.append(m)
            elif outcome in ("killed", "incompetent"):
                m.outcome = "killed"
                result.killed += 1
        result.survivors.sort(key=lambda m: m.line)
    except Exception as exc:  # report the module as failed, go on with the others
        result.error = str(exc)
    finally:
        result.seconds = time.monotonic() - start
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"[{module}] scratch copy kept: {base}", file=sys.stderr)
    print(
        f"[{module}] {result.killed}/{result.killed + len(result.survivors)} killed "
        f"({result.score:.1f} %), {result.equivalent} equivalent, {result.run} run of "
        f"{result.total}, {result.seconds:.0f} s{' ERROR' if result.error else ''}",
        file=sys.stderr,
    )
    return result


def changed_modules(ref: str) -> list[str]:
    out = subprocess.run(
        ["git", "diff", "--name-only", ref, "--", "src/vpseal", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = {Path(p).stem for p in out if p.startswith("src/vpseal/")}
    tests = {p for p in out if p.startswith("tests/")}
    return [m for m in MODULES if m in names or tests & set(MODULES[m][0])]


def _previous(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The table row and the sections of each module in an existing report."""
    rows: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    if not path.exists():
        return rows, sections
    current: str | None = None
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if line.startswith("| ") and len(cells) > 2 and cells[1] in MODULES:
            rows[cells[1]] = line
            continue
        if line.startswith("## "):
            name = line[3:].split(":")[0].strip()
            current = name if name in MODULES else None
            if current is not None:
                sections.setdefault(current, []).append("")
        if current is not None:
            sections[current].append(line)
    return rows, sections


def write_report(results: list[Result], args: argparse.Namespace, path: Path) -> None:
    """Write (or update: other modules' rows and sections are kept) the markdown report."""
    rows, sections = _previous(path)
    how = f"sample {args.sample}, seed {args.seed}" if args.sample else "every mutant"
    day = time.strftime("%Y-%m-%d", time.gmtime())
    for r in results:
        rows[r.module] = (
            f"| {r.module} | {r.total} | {r.equivalent} | {r.run} | {r.killed} | "
            f"{len(r.survivors)} | {r.score:.1f} % | {r.seconds:.0f} s | {how}, {day} |"
            + (" ERROR" if r.error else "")
        )
        block: list[str] = []
        if r.error:
            block += ["", f"## {r.module}: error", "", "```", r.error.strip()[-1500:], "```"]
        if r.survivors:
            block += ["", f"## {r.module}: survivors", ""]
            block += ["Listed as `key` for tests/mutation/equivalent.txt, then the diff.", ""]
            for m in r.survivors:
                diff = [
                    d for d in m.diff.splitlines() if d[:1] in "+-" and d[:3] not in ("+++", "---")
                ]
                block += [f"- line {m.line}: `{m.key}`", "  ```diff"]
                block += [*[f"  {d}" for d in diff], "  ```"]
        sections[r.module] = block
    lines = [
        "# Mutation testing report",
        "",
        "Written by `bash scripts/mutation.sh` (cosmic-ray, curated operators: see",
        "tests/mutation/README.md); a run updates the rows of the modules it ran. Mutants:",
        "those of the curated operators outside annotations; equivalent: recorded in",
        "equivalent.txt, not run; score: killed / (killed + survived) of the mutants run.",
        "",
        "| module | mutants | equivalent | run | killed | survived | score | time | run of |",
        "|---|---|---|---|---|---|---|---|---|",
        *[rows[m] for m in MODULES if m in rows],
    ]
    for m in MODULES:
        lines += sections.get(m, [])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"of {', '.join(MODULES)} (default: all)")
    parser.add_argument(
        "--changed",
        metavar="REF",
        help="only modules changed since REF (their source or their mapped tests)",
    )
    parser.add_argument("--sample", type=int, default=0, help="at most N mutants per module")
    parser.add_argument("--seed", default="vpseal", help="of the sample")
    parser.add_argument("--jobs", type=int, default=2, help="modules run side by side")
    parser.add_argument("--hypothesis-profile", default="dev")
    parser.add_argument("--report", type=Path, help="write the markdown report here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    args = parser.parse_args(argv)
    args.command_line = "scripts/mutation.sh " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    modules = args.modules or list(MODULES)
    for m in modules:
        if m not in MODULES:
            parser.error(f"unknown module {m!r}")
    if args.changed:
        modules = [m for m in modules if m in changed_modules(args.changed)]
        if not modules:
            print("no mapped module changed", file=sys.stderr)
            return 0
    equivalent = load_equivalent()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda m: run_module(m, args, equivalent), modules))
    if args.report:
        write_report(results, args, args.report)
    failed = [r for r in results if r.survivors or r.error]
    for r in failed:
        for m in r.survivors:
            print(f"SURVIVED {m.module}.py:{m.line}: {m.key}", file=sys.stderr)
        if r.error:
            print(f"ERROR {r.module}: {r.error[-500:]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
