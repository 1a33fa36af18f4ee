"""The native module is built hardened (csrc/build.py): stack protector, _FORTIFY_SOURCE and
full RELRO with immediate binding. The linked result is read back with readelf where the
platform is ELF and readelf is installed; the compile flags are read from the builder."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "csrc" / "build.py"


def _native_module() -> Path:
    pytest.importorskip(
        "vpseal._native", exc_type=ImportError, reason="native engine not built here"
    )
    module = importlib.import_module("vpseal._vpseal_native")
    return Path(str(module.__file__))


def _readelf(*args: str) -> str:
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf not installed")
    if not sys.platform.startswith(("linux", "freebsd")):
        pytest.skip("not an ELF platform")
    proc = subprocess.run(
        [readelf, "-W", *args, str(_native_module())], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_full_relro_and_bind_now() -> None:
    dynamic = _readelf("-d")
    assert "BIND_NOW" in dynamic or "Flags: NOW" in dynamic, dynamic
    assert "GNU_RELRO" in _readelf("-l")


def test_stack_protector() -> None:
    """-fstack-protector-strong guards the functions with local arrays (seal, open): their
    canary check calls __stack_chk_fail."""
    assert "__stack_chk_fail" in _readelf("--dyn-syms")


def _builder() -> ModuleType:
    if not BUILD.exists():
        pytest.skip("csrc/ not in this tree")
    pytest.importorskip("cffi")
    spec = importlib.util.spec_from_file_location("_vpseal_build", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builder_asks_for_hardening(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # build.py names its sources relative to the working directory
    monkeypatch.delenv("CFLAGS", raising=False)
    builder = _builder()
    compile_args, link_args = builder._hardening()
    assert "-fstack-protector-strong" in compile_args
    cflags = builder.sysconfig.get_config_var("CFLAGS") or ""
    assert "-D_FORTIFY_SOURCE=2" in compile_args or "_FORTIFY_SOURCE" in cflags
    if sys.platform not in ("darwin", "win32"):
        assert link_args == ["-Wl,-z,relro,-z,now"]


def test_builder_keeps_a_given_fortify_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CFLAGS", "-O2 -D_FORTIFY_SOURCE=3")
    compile_args, _ = _builder()._hardening()
    assert not any("_FORTIFY_SOURCE" in arg for arg in compile_args)
