"""The instruction-count gate (bench/callgrind) catches a slowed operation and passes an
unchanged tree. The slowdown is the harness's own hook (VPSEAL_GATE_SLOW wraps one operation
with an extra 64-byte bytes(bytearray(...)) copy per call), never a hook in the library.

Runs valgrind three times on one operation (about 10-20 s each), so it runs only when asked:
scripts/perf_gate.sh sets VPSEAL_PERF_GATE_TEST=1 (and installs valgrind).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OP = "signature [native]"
N = "20"

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("VPSEAL_PERF_GATE_TEST"),
        reason="runs valgrind: VPSEAL_PERF_GATE_TEST=1 (scripts/perf_gate.sh sets it)",
    ),
    pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind not installed"),
]


def _gate(tmp: Path, name: str, *extra: str, slow: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "VPSEAL_GATE_SLOW"}
    if slow:
        env["VPSEAL_GATE_SLOW"] = slow
    cmd = [
        sys.executable, "-m", "bench.callgrind", "--ops", r"^signature \[native\]$", "-n", N,
        "--baseline", str(tmp / "baseline.json"), "--results", str(tmp / f"{name}.json"),
        "--history", str(tmp / "history.jsonl"), *extra,
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def test_gate_fails_on_a_slowed_operation_and_passes_unchanged(tmp_path: Path) -> None:
    code, out = _finish(_gate(tmp_path, "base", "--update", "--record"))
    assert code == 0, out
    baseline = json.loads((tmp_path / "baseline.json").read_text())
    assert list(baseline["counts"]) == [OP]
    assert baseline["fingerprint"]["valgrind"].startswith("valgrind-")
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 1

    # the unchanged tree and the slowed variant, at once (2 cores)
    same, slowed = _gate(tmp_path, "same"), _gate(tmp_path, "slow", slow=OP)
    (code, out), (slow_code, slow_out) = _finish(same), _finish(slowed)

    assert code == 0, out
    assert "| signature | native |" in out and "| ok |" in out, out
    assert slow_code == 1, slow_out
    assert "| FAIL |" in slow_out and f"FAILED: more than +3% over the baseline: {OP}" in slow_out
    before = baseline["counts"][OP]
    after = json.loads((tmp_path / "slow.json").read_text())["counts"][OP]
    assert after > before * 1.03
    same_count = json.loads((tmp_path / "same.json").read_text())["counts"][OP]
    assert abs(same_count / before - 1) < 0.01


def test_a_different_environment_only_warns(tmp_path: Path) -> None:
    """A baseline from another environment: the same slowdown is reported, not failed."""
    sys.path.insert(0, str(ROOT))
    from bench.callgrind import gate

    fp = {k: "x" for k in gate.FINGERPRINT_KEYS}
    baseline = {"fingerprint": {**fp, "python": "other"}, "n": 20, "counts": {OP: 1000.0}}
    rows, notes, failed = gate.compare({OP: 2000.0}, baseline, fp, 20)
    assert not failed and rows[0].verdict == "warn: slower (other environment)"
    assert any("python differs" in note for note in notes)
    rows, _, failed = gate.compare({OP: 2000.0}, {**baseline, "fingerprint": fp}, fp, 20)
    assert failed and rows[0].verdict == "FAIL"
    rows, _, failed = gate.compare({OP: 995.0}, {**baseline, "fingerprint": fp}, fp, 20)
    assert not failed and rows[0].verdict == "ok"
    rows, _, failed = gate.compare({OP: 900.0}, {**baseline, "fingerprint": fp}, fp, 20)
    assert not failed and rows[0].verdict == "improved: re-baseline"
