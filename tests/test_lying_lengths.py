"""A bytes subclass whose __len__ lies never reaches C with its lie (item 3 of issue 9): every
entry point, on both engines, gives the same answer as with honest bytes or a clean exception,
and never crashes or answers wrongly. The cases (tests/_lying_cases.py) run in one subprocess
per engine, so that a segfault fails these tests instead of killing pytest."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _lying_cases import names

HERE = Path(__file__).resolve().parent


@functools.cache
def _run(backend: str) -> tuple[dict[str, str], str]:
    """(outcome by case name, what the process said when it ended)."""
    env = {k: v for k, v in os.environ.items() if k != "VPSEAL_BACKEND"}
    proc = subprocess.run(
        [sys.executable, str(HERE / "_lying_cases.py"), backend],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    outcomes: dict[str, str] = {}
    started = ""
    for line in proc.stdout.splitlines():
        if line.startswith("start "):
            started = line[len("start ") :]
        elif started and line.startswith(started + " "):
            outcomes[started] = line[len(started) + 1 :]
    ending = f"exit status {proc.returncode}; last case started: {started!r}\n{proc.stderr[-2000:]}"
    return outcomes, ending


@pytest.mark.parametrize("case", names())
@pytest.mark.parametrize("engine", ["native", "fallback"])
def test_lying_length_gives_right_answer_or_clean_error(engine: str, case: str) -> None:
    if engine == "native":
        pytest.importorskip(
            "vpseal._native", exc_type=ImportError, reason="native engine not built here"
        )
    outcomes, ending = _run(engine)
    assert case in outcomes, f"the case never finished (a crash?): {ending}"
    outcome = outcomes[case]
    assert outcome == "ok" or outcome.startswith("error "), outcome
    if case.startswith("engine"):  # the engines convert: the true bytes give the true answer
        assert outcome == "ok"
