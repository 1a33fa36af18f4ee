"""The public surface (issue 10 item 4): every public class importable from ``vpseal``, one
version everywhere, ``vpseal --version``. Runs against an installed copy too
(scripts/check_dist.sh)."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import pkgutil
import subprocess
import sys

import pytest

import vpseal
import vpseal.sandbox
from vpseal import cli


def _modules(package: object) -> list[object]:
    """The package's modules that import here (not the native engine where it is missing)."""
    modules = []
    for info in pkgutil.iter_modules(package.__path__):  # type: ignore[attr-defined]
        try:
            modules.append(importlib.import_module(f"{package.__name__}.{info.name}"))  # type: ignore[attr-defined]
        except ImportError:
            if info.name != "_native":
                raise
    return modules


def _exceptions(package: object) -> dict[str, type[BaseException]]:
    """Every exception and warning class defined in the package's modules (private modules
    included: a class defined there may still reach users), by name."""
    found: dict[str, type[BaseException]] = {}
    for module in _modules(package):
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__  # type: ignore[attr-defined]
                and not name.startswith("_")
            ):
                found[name] = obj
    return found


def test_every_exception_class_is_exported() -> None:
    exceptions = _exceptions(vpseal)
    assert {"APIError", "WalletLocked", "NonceStoreFull", "NativeEngineUnavailable"} <= set(
        exceptions
    )
    missing = sorted(set(exceptions) - set(vpseal.__all__))
    assert not missing, f"not in vpseal.__all__: {missing}"
    for name, cls in exceptions.items():
        assert getattr(vpseal, name) is cls


def test_every_api_error_class_is_exported() -> None:
    from vpseal import api_errors

    for code, cls in api_errors.ERRORS_BY_CODE.items():
        assert getattr(vpseal, cls.__name__) is cls, code
        assert cls.__name__ in vpseal.__all__


def test_public_modules_classes_are_exported() -> None:
    """A class a public module lists in its own __all__ is importable from vpseal too."""
    for module in _modules(vpseal):
        if module.__name__.rpartition(".")[2].startswith("_"):  # type: ignore[attr-defined]
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj) and not name.startswith("_"):
                if obj.__module__.startswith("vpseal.sandbox"):
                    continue  # the sandbox is its own namespace: vpseal.sandbox
                assert name in vpseal.__all__, f"{module.__name__}.{name}"  # type: ignore[attr-defined]


def test_sandbox_exceptions_are_exported_from_the_sandbox() -> None:
    missing = sorted(set(_exceptions(vpseal.sandbox)) - set(vpseal.sandbox.__all__))
    assert not missing, f"not in vpseal.sandbox.__all__: {missing}"


def test_all_names_exist() -> None:
    for name in vpseal.__all__:
        assert hasattr(vpseal, name), name
    assert len(set(vpseal.__all__)) == len(vpseal.__all__)


def test_one_version() -> None:
    try:
        installed = importlib.metadata.version("vpseal")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        pytest.skip("vpseal is not installed (no metadata)")
    assert installed == vpseal.__version__


def test_license_in_metadata() -> None:
    try:
        meta = importlib.metadata.metadata("vpseal")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        pytest.skip("vpseal is not installed (no metadata)")
    assert meta.get("License-Expression") == "Apache-2.0"
    assert "Typing :: Typed" in (meta.get_all("Classifier") or [])
    files = importlib.metadata.files("vpseal") or []
    assert any(str(f).endswith("LICENSE") for f in files), "LICENSE not installed"


def test_version_option() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vpseal", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"vpseal {vpseal.__version__} (")
    assert f"{vpseal.backend()} engine" in proc.stdout
    assert cli.version_text() == proc.stdout.strip()


def test_aesgcm_is_typed() -> None:
    """encrypt/decrypt are typed for users of mypy (not Callable[..., bytes])."""
    from vpseal import aead

    hints = aead.AesGcm.__annotations__
    assert hints["encrypt"] in ("_Encrypt", aead._Encrypt)
    params = inspect.signature(aead._Encrypt.__call__).parameters
    assert list(params) == ["self", "iv", "plaintext", "aad"]
