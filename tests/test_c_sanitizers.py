"""The C engine on its own, built from csrc/ against the same libcrypto with the sanitizers:

- csrc/check/sanitize.c under AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer:
  every entry point, every length check, bodies of one and of several base64 chunks;
- csrc/check/threads.c under ThreadSanitizer: threads sharing keys (contended worker pools),
  mixed-key batches, per-thread random caches, keys made and freed meanwhile;
- csrc/check/forkcheck.c: random bytes never repeat across processes split by a raw clone()
  (no pthread_atfork handlers run), with MADV_WIPEONFORK and with the per-draw pid check.

Each skips, saying why, where no C compiler or sanitizer runtime is available.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"

pytestmark = [
    pytest.mark.skipif(not (CSRC / "vpseal.c").exists(), reason="csrc/ not in this tree"),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX C harnesses"),
]


def _compiler() -> str:
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    return cc


def _build(tmp_path: Path, harness: str, flags: list[str], runtime: str | None) -> Path:
    """Compile csrc/check/<harness>.c with vpseal.c; skip when the sanitizer runtime named
    by runtime (e.g. "tsan") is missing, fail on any other compiler error."""
    exe = tmp_path / harness
    build = subprocess.run(
        [_compiler(), "-g", "-O1", "-std=c11", "-fno-omit-frame-pointer", *flags,
         f"-I{CSRC}", str(CSRC / "check" / f"{harness}.c"), str(CSRC / "vpseal.c"),
         "-lcrypto", "-lpthread", "-o", str(exe)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if build.returncode != 0 and runtime is not None and runtime in build.stderr.lower():
        pytest.skip(f"{runtime} runtime not installed: {build.stderr.strip()[:200]}")
    assert build.returncode == 0, build.stderr
    return exe


def _run(exe: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(exe)], capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )


def test_native_engine_is_clean_under_sanitizers(tmp_path: Path) -> None:
    exe = _build(
        tmp_path, "sanitize", ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"],
        "asan",
    )  # fmt: skip
    run = _run(exe)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr


def test_native_engine_is_clean_under_thread_sanitizer(tmp_path: Path) -> None:
    exe = _build(tmp_path, "threads", ["-fsanitize=thread"], "tsan")
    run = _run(exe, {"TSAN_OPTIONS": "halt_on_error=1 exitcode=66"})
    if run.returncode != 0 and "ThreadSanitizer" in run.stderr and "WARNING" not in run.stderr:
        # e.g. "FATAL: ThreadSanitizer: unexpected memory mapping" on kernels whose mmap
        # randomisation the runtime does not support: the environment, not the engine
        pytest.skip(f"ThreadSanitizer cannot run here: {run.stderr.strip()[:200]}")
    assert "WARNING: ThreadSanitizer" not in run.stderr, run.stderr
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="raw clone() is Linux's")
@pytest.mark.parametrize(
    "flags", [[], ["-DVP_RANDOM_PID_CHECK"]], ids=["wipe-on-fork", "pid-check"]
)
def test_random_never_repeats_across_raw_clone(tmp_path: Path, flags: list[str]) -> None:
    exe = _build(tmp_path, "forkcheck", flags, None)
    run = _run(exe)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr
