"""Run the whole gateway benchmark without pytest and print its table.

    cd bench && python -m gateway.run            # full: N=2000, 5 interleaved rounds
    cd bench && python -m gateway.run --short    # what CI runs (also VPSEAL_BENCH_SHORT=1)

bench/test_gateway.py runs the same pieces, one test per cell.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gateway import report
from gateway.tls import CertFiles, make_cert

BENCH = Path(__file__).resolve().parents[1]


def _python(module: str, args: list[str], short: bool, timeout: float) -> dict[str, Any]:
    """Run a gateway module in a fresh interpreter and return the JSON it prints."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH),
           os.environ.get("PYTHONPATH")]))}  # fmt: skip
    if short:
        env["VPSEAL_BENCH_SHORT"] = "1"
    else:
        env.pop("VPSEAL_BENCH_SHORT", None)
    done = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
        timeout=timeout, cwd=BENCH,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_cell(c: int, cert: CertFiles | None, short: bool, timeout: float = 1800) -> dict[str, Any]:
    args = ["--c", str(c)]
    if cert is not None:
        args += ["--tls", str(cert.cert), str(cert.key)]
    return _python("gateway.cell", args, short, timeout)


def run_scaling(short: bool, timeout: float = 900) -> dict[str, Any]:
    return _python("gateway.scaling", [], short, timeout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", default=bool(os.environ.get(
        "VPSEAL_BENCH_SHORT")))  # fmt: skip
    parser.add_argument("--c", type=int, nargs="*", default=list(report.CONCURRENCY))
    parser.add_argument("--transport", nargs="*", default=list(report.TRANSPORTS))
    parser.add_argument("--no-scaling", action="store_true")
    args = parser.parse_args(argv)
    results = report.Results(mode="short" if args.short else "full")
    with tempfile.TemporaryDirectory(prefix="vpseal-gateway-") as tmp:
        cert = make_cert(Path(tmp))
        for transport in args.transport:
            for c in args.c:
                print(f"running {transport} c={c} ...", file=sys.stderr, flush=True)
                results.add_cell(run_cell(c, cert if transport == "tls" else None, args.short))
        if not args.no_scaling:
            print("running 1 vs 2 processes ...", file=sys.stderr, flush=True)
            results.scaling = run_scaling(args.short)
    print("\n".join(report.render(results)))
    print(f"\nwritten to {report.write_json(results)}")


if __name__ == "__main__":
    main()
