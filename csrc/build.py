"""cffi builder (out-of-line API mode) for vpseal's native engine, used by setup.py.

OPENSSL_DIR (a prefix with include/ and lib/) points the build at another OpenSSL; the library
directory is also recorded as the run-time search path so that the same libcrypto is loaded.
"""

from __future__ import annotations

import os
import re
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


include_dirs, library_dirs = _openssl_dirs()

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
    ],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
