"""Builds the native engine (C over OpenSSL) with cffi, as one abi3 wheel for CPython >= 3.10.

A failed native build fails the install, so that a wheel without the native engine is never
built (and cached by pip) under the native wheel's name: a gateway would run 2-3x slower
without knowing. VPSEAL_ALLOW_FALLBACK=1 at build time allows it explicitly: the install then
succeeds, says why once, and vpseal runs on its pycryptodome fallback (and warns at import).
See docs/openssl.md.

Also:
- the wheel is tagged cp310-abi3 (cffi compiles with Py_LIMITED_API), except on free-threaded
  CPython, which has no stable ABI before 3.15;
- the interpreter's own link flags lose their -rpath (a pyenv or relocatable Python's
  LDSHARED names its build directory, which would end up as the module's RUNPATH). The
  OPENSSL_DIR library directory is kept (csrc/build.py).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

FAILURE_NOTE = "_native_unavailable.txt"
ALLOW_FALLBACK = "VPSEAL_ALLOW_FALLBACK"
_TRUE = ("1", "true", "yes", "on")

FIX = (
    "install a C compiler and the OpenSSL 3 headers (Debian/Ubuntu: build-essential"
    " libssl-dev; Fedora: gcc openssl-devel; Alpine: build-base openssl-dev), or set"
    " OPENSSL_DIR to an OpenSSL prefix, then reinstall with pip's --no-cache-dir"
)


def fallback_allowed(environ: Mapping[str, str]) -> bool:
    """Whether a failed native build may produce a fallback-only install."""
    return environ.get(ALLOW_FALLBACK, "").strip().lower() in _TRUE


def native_failure_message(reason: str, environ: Mapping[str, str]) -> tuple[bool, str]:
    """(give up with the fallback?, what to print) for a native build that failed."""
    if fallback_allowed(environ):
        return True, (
            "\nWARNING: vpseal's native engine (C over OpenSSL) could not be built;"
            f" {ALLOW_FALLBACK} is set, so vpseal will use its pure-Python fallback on"
            " pycryptodome (2-3x slower).\n"
            f"  reason: {reason}\n  fix: {FIX}.\n\n"
        )
    return False, (
        "\nERROR: vpseal's native engine (C over OpenSSL) could not be built.\n"
        f"  reason: {reason}\n  fix: {FIX}.\n"
        f"  or set {ALLOW_FALLBACK}=1 to install the pure-Python fallback (2-3x slower).\n\n"
    )


def without_rpath(command: Sequence[str]) -> list[str]:
    """A linker command without the -rpath options the interpreter's build put in it."""
    return [arg for arg in command if not arg.startswith(("-Wl,-rpath", "-Wl,-R"))]


def limited_api_tag() -> str | None:
    """The bdist_wheel py_limited_api value: cp310 on CPython with a GIL, else None."""
    if sys.implementation.name != "cpython" or sysconfig.get_config_var("Py_GIL_DISABLED"):
        return None
    return "cp310"


class NativeBuild(build_ext):
    """build_ext that fails loudly, or falls back only when VPSEAL_ALLOW_FALLBACK says so."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            self._failed(exc)

    def build_extensions(self) -> None:
        for name in ("linker_so", "linker_so_cxx"):
            command = getattr(self.compiler, name, None)
            if command:
                setattr(self.compiler, name, without_rpath(command))
        super().build_extensions()

    def build_extension(self, ext):  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}".strip()
        if len(reason) > 300:  # a CompileError carries the whole compiler command
            reason = reason[:300] + "..."
        give_up, message = native_failure_message(reason, os.environ)
        sys.stderr.write(message)
        if not give_up:
            raise SystemExit(f"vpseal: native engine build failed ({reason})") from exc
        package_dir = Path(self.build_lib if not self.inplace else "src") / "vpseal"
        package_dir.mkdir(parents=True, exist_ok=True)
        (package_dir / FAILURE_NOTE).write_text(reason + "\n")


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import it
    tag = limited_api_tag()
    setup(
        cffi_modules=["csrc/build.py:ffibuilder"],
        cmdclass={"build_ext": NativeBuild},
        options={"bdist_wheel": {"py_limited_api": tag}} if tag else {},
    )
