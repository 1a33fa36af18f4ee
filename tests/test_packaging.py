"""The build's decisions (setup.py): a failed native build fails the install unless
VPSEAL_ALLOW_FALLBACK allows the fallback, the wheel is abi3, and the interpreter's -rpath is
not carried into the module. The real builds run in scripts/check_dist.sh; these tests call
setup.py's functions directly (skipped where setup.py is absent, e.g. an installed copy)."""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "setup.py"


@pytest.fixture(scope="module")
def setup_py() -> ModuleType:
    if not SETUP.exists():
        pytest.skip("setup.py not in this tree (an installed copy of the tests)")
    pytest.importorskip("setuptools")
    spec = importlib.util.spec_from_file_location("_vpseal_setup", SETUP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not __main__: setup() is not called
    return module


@pytest.mark.parametrize(
    ("value", "allowed"),
    [(None, False), ("", False), ("0", False), ("no", False), ("1", True), ("true", True),
     (" YES ", True), ("on", True)],
)  # fmt: skip
def test_fallback_allowed_only_when_asked(
    setup_py: ModuleType, value: str | None, allowed: bool
) -> None:
    environ = {} if value is None else {"VPSEAL_ALLOW_FALLBACK": value}
    assert setup_py.fallback_allowed(environ) is allowed


def test_failure_message_without_permission(setup_py: ModuleType) -> None:
    give_up, message = setup_py.native_failure_message("CompileError: no cc", {})
    assert give_up is False
    assert "ERROR" in message and "CompileError: no cc" in message
    assert "VPSEAL_ALLOW_FALLBACK=1" in message and "libssl-dev" in message
    assert "--no-cache-dir" in message


def test_failure_message_with_permission(setup_py: ModuleType) -> None:
    give_up, message = setup_py.native_failure_message("x", {"VPSEAL_ALLOW_FALLBACK": "1"})
    assert give_up is True
    assert "WARNING" in message and "fallback" in message


def _command(setup_py: ModuleType, build_lib: Path) -> object:
    from setuptools.dist import Distribution

    cmd = setup_py.NativeBuild(Distribution())
    cmd.initialize_options()
    cmd.build_lib = str(build_lib)
    cmd.inplace = False
    return cmd


def test_failed_build_fails(
    setup_py: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.delenv("VPSEAL_ALLOW_FALLBACK", raising=False)
    cmd = _command(setup_py, tmp_path)
    with pytest.raises(SystemExit, match="native engine build failed"):
        cmd._failed(RuntimeError("no compiler"))  # type: ignore[attr-defined]
    assert "ERROR" in capsys.readouterr().err
    assert not (tmp_path / "vpseal" / setup_py.FAILURE_NOTE).exists()


def test_failed_build_falls_back_when_allowed(
    setup_py: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("VPSEAL_ALLOW_FALLBACK", "1")
    cmd = _command(setup_py, tmp_path)
    cmd._failed(RuntimeError("no compiler"))  # type: ignore[attr-defined]
    assert "WARNING" in capsys.readouterr().err
    note = tmp_path / "vpseal" / setup_py.FAILURE_NOTE
    assert note.read_text() == "RuntimeError: no compiler\n"


def test_interpreter_rpath_dropped(setup_py: ModuleType) -> None:
    command = ["gcc", "-shared", "-L/py/lib", "-Wl,-rpath,/py/lib", "-Wl,-R/x", "-O2"]
    assert setup_py.without_rpath(command) == ["gcc", "-shared", "-L/py/lib", "-O2"]


def test_wheel_is_abi3_on_cpython_with_gil(setup_py: ModuleType) -> None:
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    expected = "cp310" if sys.implementation.name == "cpython" and not free_threaded else None
    assert setup_py.limited_api_tag() == expected


def test_native_module_has_no_build_machine_runpath() -> None:
    """Without OPENSSL_DIR the module names no search path: libcrypto comes from the system's
    loader path, not from wherever the build machine's Python lived."""
    import os
    import shutil
    import subprocess

    if os.environ.get("OPENSSL_DIR"):
        pytest.skip("OPENSSL_DIR build: its library directory is the intended RUNPATH")
    readelf = shutil.which("readelf")
    if readelf is None or not sys.platform.startswith("linux"):
        pytest.skip("needs readelf on Linux")
    pytest.importorskip(
        "vpseal._native", exc_type=ImportError, reason="native engine not built here"
    )
    import vpseal._vpseal_native as compiled  # type: ignore[import-not-found,unused-ignore]

    proc = subprocess.run(
        [readelf, "-d", str(compiled.__file__)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "RUNPATH" not in proc.stdout and "RPATH" not in proc.stdout, proc.stdout
