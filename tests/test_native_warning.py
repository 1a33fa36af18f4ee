"""No silent fallback (issue 10 item 3): when the native engine was expected (VPSEAL_BACKEND
unset) but cannot load, importing vpseal warns once with vpseal.NativeEngineUnavailable,
saying why and how to fix it; choosing the fallback explicitly does not warn."""

from __future__ import annotations

import os
import subprocess
import sys

import vpseal

# The compiled module is made unimportable (as where the build failed or libcrypto is missing).
_NO_NATIVE = 'import sys; sys.modules["vpseal._vpseal_native"] = None\n'

_PROBE = """
import warnings
warnings.simplefilter("always")  # "once" must come from vpseal, not from the filter
with warnings.catch_warnings(record=True) as caught:
    import vpseal
    import importlib, vpseal.aead  # later imports do not warn again
    vpseal.AesGcm(bytes(32)).encrypt(bytes(12), b"x")
for w in caught:
    print(w.category.__module__, w.category.__name__, "|", w.message)
print("backend", vpseal.backend())
"""


def _run(prelude: str, backend: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "VPSEAL_BACKEND"}
    if backend is not None:
        env["VPSEAL_BACKEND"] = backend
    proc = subprocess.run(
        [sys.executable, "-c", prelude + _PROBE], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_warning_class_is_public_runtime_warning() -> None:
    assert issubclass(vpseal.NativeEngineUnavailable, RuntimeWarning)
    assert "NativeEngineUnavailable" in vpseal.__all__


def test_missing_native_engine_warns_once_with_reason_and_fix() -> None:
    lines = _run(_NO_NATIVE, None)
    assert lines[-1] == "backend fallback"
    warned = lines[:-1]
    assert len(warned) == 1, lines
    text = warned[0]
    assert text.startswith("vpseal.errors NativeEngineUnavailable |"), text
    assert "native engine is not available" in text  # why
    assert "libssl-dev" in text and "--no-cache-dir" in text  # how to fix
    assert "VPSEAL_BACKEND=fallback" in text  # how to choose the fallback on purpose


def test_explicit_fallback_does_not_warn() -> None:
    assert _run(_NO_NATIVE, "fallback") == ["backend fallback"]


def test_native_engine_present_does_not_warn() -> None:
    try:
        import vpseal._native  # noqa: F401
    except ImportError:
        import pytest

        pytest.skip("native engine not built here")
    assert _run("", None) == ["backend native"]
