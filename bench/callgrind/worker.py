"""Runs inside valgrind: each operation after warm-up, N then 2N times, between markers.

    valgrind --tool=callgrind --dump-before=adler32 ... python bench/callgrind/worker.py \
        ENGINE N OUT.json [KEY ...]

The marker is ``zlib.adler32(b"")``: a C call through CPython's ordinary calling convention
into libz's exported ``adler32``, which nothing measured calls, so callgrind dumps (and zeroes)
its counters right before each one. Per operation: marker, N calls, marker, 2N calls, marker;
the dump taken at the second marker holds N calls plus fixed costs (the marker's own return,
the loop's start), the one at the third 2N calls plus the same fixed costs, so their
difference is exactly N calls. The cyclic GC is disabled for the whole run, so that no
collection lands in one of the loops at random (the counts leave out the GC's amortised cost;
a collection per operation would cost more instructions than most operations).
OUT.json gets the keys measured, in order (the gate checks the number of dumps against it).

VPSEAL_GATE_SLOW=KEY wraps that operation with an extra ``bytes(bytearray(blob))`` copy of 64
bytes per call: the deliberately slowed variant the gate's own test must catch (the hook is
here, never in the library).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # bench/ (pipelines, client_stubs), this dir

from ops import Op, Work, all_ops, calls  # noqa: E402


def _slowed(work: Work) -> Work:
    blob = bytes(64)

    def slowed() -> object:
        bytes(bytearray(blob))
        return work()

    return slowed


def measure(op: Op, n: int, slow: str | None) -> None:
    work = op.factory()
    if op.key == slow:
        work = _slowed(work)
    # warm-up (specialised bytecode, caches, lazy imports, allocator arenas), the same whatever
    # N is
    for _ in range(5 if op.heavy or op.per > 1 else 30):
        work()
    mark = zlib.adler32
    mark(b"")
    for _ in range(n):
        work()
    mark(b"")
    for _ in range(2 * n):
        work()
    mark(b"")


def main(argv: list[str]) -> None:
    engine, n, out, *keys = argv
    gc.disable()
    wanted = set(keys)
    slow = os.environ.get("VPSEAL_GATE_SLOW")
    done = []
    for op in all_ops():
        if op.process == engine and (not wanted or op.key in wanted):
            measure(op, calls(op, int(n)), slow)
            done.append(op.key)
    Path(out).write_text(json.dumps(done))


if __name__ == "__main__":
    main(sys.argv[1:])
