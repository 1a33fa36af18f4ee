"""Builds the native engine with cffi; when it cannot (no compiler, no OpenSSL headers), the
install still succeeds, says why once, and vpseal runs on its pycryptodome fallback."""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

FAILURE_NOTE = "_native_unavailable.txt"


class OptionalNativeBuild(build_ext):
    """build_ext that turns a failed native build into one warning and a note in the package."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            self._give_up(exc)

    def build_extension(self, ext):  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._give_up(exc)

    def _give_up(self, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}".strip()
        sys.stderr.write(
            "\nWARNING: vpseal's native engine (C over OpenSSL) could not be built; vpseal will"
            " use its pure-Python fallback on pycryptodome.\n"
            f"  reason: {reason}\n"
            "  fix: install a C compiler and the OpenSSL 3 headers (Debian: libssl-dev), or set"
            " OPENSSL_DIR, then reinstall.\n\n"
        )
        package_dir = Path(self.build_lib if not self.inplace else "src") / "vpseal"
        package_dir.mkdir(parents=True, exist_ok=True)
        (package_dir / FAILURE_NOTE).write_text(reason + "\n")


setup(
    cffi_modules=["csrc/build.py:ffibuilder"],
    cmdclass={"build_ext": OptionalNativeBuild},
)
