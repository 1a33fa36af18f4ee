"""The instruction-count performance gate (issue 13): CPU instructions per operation counted
by valgrind's callgrind, compared with a committed baseline. Instruction counts do not move
with machine load (identical runs differ by at most 0.75 %, against 10-40 % for wall time
on a loaded machine), so CI can fail on them.

    python -m bench.callgrind              # count, compare, print the table; exit 1 on a fail
    python -m bench.callgrind --update     # re-baseline: rewrite baseline.json (commit it)
    python -m bench.callgrind --record     # also append one line to history.jsonl (main)
    python -m bench.callgrind --ops 'seal' # only the operations whose key matches
    python -m bench.callgrind.plot         # charts into docs/img (the "plot" extra)
    bash scripts/perf_gate.sh              # CI: installs valgrind, tests the gate, runs it

How: one valgrind process per engine (VPSEAL_BACKEND=native / fallback; the peers share them),
both at once. worker.py runs each operation after a warm-up, N then 2N times, with a marker
call (zlib.adler32, which callgrind is told to dump before: --dump-before=adler32) before,
between and after the loops; the difference of the two loops' counts is exactly N calls, with
start-up, set-up, imports and the loop's fixed costs cancelled. PYTHONHASHSEED=0 and the cyclic
GC off during the run keep the counts repeatable.

Verdicts (gate.py): an operation of vpseal's that costs more than FAIL_ABOVE (3 %) over its
baseline fails; a shift beyond WARN_ABOVE (1 %) either way warns (an improvement suggests a
re-baseline); when the environment's fingerprint (Python build, libcrypto, cffi, pycryptodome,
valgrind, compiler, CPU) or N differs from the baseline's, nothing fails and the differences
are named. The peers (the hand-written pipelines of bench/pipelines.py on cryptography and
pycryptodome, cryptography's AESGCM, pycryptodome's AES.new per message, hashlib for the
signature) are counted in the same run and shown as ratios, never gated.

Files: baseline.json (committed), history.jsonl (committed, one line per --record run),
bench/.results/callgrind.json (the last run, not committed).

What instruction counts cannot see (valgrind's CPU hides AVX-512 and VAES, and runs threads one
at a time): 1 MiB throughput, thread and process scaling and the gateway stay wall-clock
benchmarks (bench/test_*.py), warn-only except bench/conftest.py's MUST_BEAT.
"""
