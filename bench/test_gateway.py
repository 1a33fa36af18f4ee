"""The gateway benchmark (issue 12, part 1): client CPU per sealed cash-out and requests/s at
c = 1, 8 and 64, sync (threads) and async (asyncio and uvloop), over plain HTTP and TLS,
against a fast loopback server in its own process that opens every request with vpseal.

Each (transport, c) cell runs in a fresh process (bench/gateway/cell.py) pinned to the first
CPU, with the server pinned to the second; the end of the session prints the table and issue
12's target ratios (bench/conftest.py) and writes them to bench/.results/gateway.json (short
mode: gateway-short.json). Targets are reported, not enforced; what fails a test is a broken
measurement: a client that cannot start, a request the server refused, or an answer whose
code is not 0.

    .venv-test/bin/python -m pytest bench/test_gateway.py      # full: 4 rounds, 10-15 min
    VPSEAL_BENCH_SHORT=1 .venv-test/bin/python -m pytest bench/test_gateway.py   # 1-2.5 min
    cd bench && ../.venv-test/bin/python -m gateway.run [--short]  # the same, without pytest

VPSEAL_GATEWAY_ROUNDS=N sets the rounds; VPSEAL_BENCH_NO_BOOST=1 keeps normal priority.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gateway import report
from gateway.harness import SHORT
from gateway.run import run_cell, run_scaling
from gateway.tls import CertFiles, make_cert

report.RESULTS.mode = "short" if SHORT else "full"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_cert(tmp_path_factory.mktemp("gateway-tls"))


def _check(cell: dict[str, Any]) -> None:
    """Every client started, every answer was code 0 and no request was refused: else the
    numbers lie (a client that sends wrong bytes must not look fast)."""
    assert not cell.get("failed"), f"clients that failed to start: {cell['failed']}"
    rows = report.table(report.Results(cells=[cell]))[cell["transport"]][cell["c"]]
    refused = {
        key: sum(r["server_refused"] for r in rounds) for key, rounds in cell["results"].items()
    }
    assert not any(refused.values()), f"the server refused requests: {refused}"
    bad = {key: row.api_errors for key, row in rows.items() if row.api_errors}
    assert not bad, f"answers with a code other than 0: {bad}"
    floor = [row for key, row in rows.items() if key.endswith("/floor")]
    assert all(row.errors == 0 for row in floor), "the raw floor client had transport errors"


@pytest.mark.parametrize("c", report.CONCURRENCY)
@pytest.mark.parametrize("transport", report.TRANSPORTS)
def test_gateway_cell(transport: str, c: int, cert: CertFiles) -> None:
    cell = run_cell(c, cert if transport == "tls" else None, SHORT)
    report.RESULTS.add_cell(cell)
    report.write_json(report.RESULTS)
    _check(cell)
    if not cell["results"]:
        pytest.skip(f"no client could run: {cell['skipped']}")


def test_gateway_two_processes() -> None:
    scaling = run_scaling(SHORT)
    report.RESULTS.scaling = scaling
    path: Path = report.write_json(report.RESULTS)
    ran = [v for v in scaling["clients"].values() if "skipped" not in v]
    if not ran:
        pytest.skip(f"no client could run: {scaling['clients']}")
    for found in ran:
        assert found["one"]["api_errors"] == found["two"]["api_errors"] == 0, path
