"""cffi builder (out-of-line API mode) for vpseal's native engine, used by setup.py.

OPENSSL_DIR (a prefix with include/ and lib/) points the build at another OpenSSL; the library
directory is also recorded as the run-time search path so that the same libcrypto is loaded.

Hardening: the engine is compiled with -fstack-protector-strong and -D_FORTIFY_SOURCE=2 (which
needs optimisation, hence -O2), and on ELF platforms linked with full RELRO and immediate
binding (-z relro -z now: the GOT is read-only once loaded). tests/test_build_hardening.py
checks the built module with readelf.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from pathlib import Path

from cffi import FFI

HERE = Path(os.path.relpath(Path(__file__).resolve().parent))  # setuptools wants relative paths
HEADER = (HERE / "vpseal.h").read_text()
CDEF = re.search(r"/\* --- cdef begin --- \*/(.*)/\* --- cdef end --- \*/", HEADER, re.S)
if CDEF is None:  # pragma: no cover - a broken checkout
    raise RuntimeError("csrc/vpseal.h lost its cdef markers")


def _openssl_dirs() -> tuple[list[str], list[str]]:
    prefix = os.environ.get("OPENSSL_DIR")
    if not prefix:
        return [], []
    libs = [str(Path(prefix) / d) for d in ("lib64", "lib") if (Path(prefix) / d).is_dir()]
    return [str(Path(prefix) / "include")], libs


def _hardening() -> tuple[list[str], list[str]]:
    """(compile, link) flags. _FORTIFY_SOURCE is left alone when the interpreter's or the
    user's CFLAGS already set it (a distribution's =3 must not be redefined to 2)."""
    compile_args = ["-fstack-protector-strong"]
    given = f"{sysconfig.get_config_var('CFLAGS') or ''} {os.environ.get('CFLAGS', '')}"
    if "_FORTIFY_SOURCE" not in given:
        compile_args.append("-D_FORTIFY_SOURCE=2")
    link_args = [] if sys.platform in ("darwin", "win32") else ["-Wl,-z,relro,-z,now"]
    return compile_args, link_args


include_dirs, library_dirs = _openssl_dirs()
hardening_compile, hardening_link = _hardening()

ffibuilder = FFI()
ffibuilder.cdef(CDEF.group(1))
ffibuilder.set_source(
    "vpseal._vpseal_native",
    '#include "vpseal.h"',
    sources=[str(HERE / "vpseal.c")],
    include_dirs=[str(HERE), *include_dirs],
    library_dirs=library_dirs,
    runtime_library_dirs=library_dirs,
    libraries=["crypto"],
    extra_compile_args=[
        "-O2",
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror=implicit-function-declaration",
        *hardening_compile,
    ],
    extra_link_args=hardening_link,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
