"""Whole requests: seal and open of the seeds' cash-out payload with vpseal (native, fallback)
against hand-written pipelines on cryptography and pycryptodome; batches of 1,000; batches on
one and two threads."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import SHORT
from pipelines import CryptographyPipeline, PycryptodomePipeline

import vpseal

AGENT = "integratorNBTest04"
KEY = os.urandom(32)
PAYLOAD = {"username": "player001", "transId": "CASHOUT-20250129-001"}
BATCH = 1000
# opening always takes a guard; these open the same requests again and again, so the nonce
# check is left out (a MemoryNonceStore would refuse the second round) and the window stays
GUARD = vpseal.ReplayGuard.window_only()
IMPLS = ["native", "fallback", "cryptography-pipeline", "pycryptodome-pipeline"]


def _credentials(impl: str) -> vpseal.Credentials:
    try:
        return vpseal.Credentials(AGENT, KEY, backend=impl)
    except ImportError:
        pytest.skip(f"{impl} engine not available")


def _pipeline(impl: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(seal(), open()) for one implementation, opening a request sealed by it."""
    if impl in ("native", "fallback"):
        creds = _credentials(impl)
        sealed = vpseal.seal_request(creds, PAYLOAD)
        return (
            lambda: vpseal.seal_request(creds, PAYLOAD),
            lambda: vpseal.open_request(creds, sealed.headers, sealed.body, guard=GUARD),
        )
    pipe = (CryptographyPipeline if impl.startswith("cryptography") else PycryptodomePipeline)(
        AGENT, KEY
    )
    headers, body = pipe.seal(PAYLOAD)
    return (lambda: pipe.seal(PAYLOAD)), (lambda: pipe.open(headers, body))


def _run(benchmark: Any, fn: Callable[[], Any], *, iterations: int = 200) -> Any:
    if SHORT:
        return benchmark.pedantic(fn, rounds=3, iterations=max(1, iterations // 20))
    return benchmark(fn)


@pytest.mark.parametrize("impl", IMPLS)
def test_seal(benchmark: Any, impl: str) -> None:
    seal, _ = _pipeline(impl)
    benchmark.group = "seal cash-out"
    benchmark.extra_info["impl"] = impl
    _run(benchmark, seal)


@pytest.mark.parametrize("impl", IMPLS)
def test_open(benchmark: Any, impl: str) -> None:
    _, open_ = _pipeline(impl)
    assert open_() is not None
    benchmark.group = "open cash-out"
    benchmark.extra_info["impl"] = impl
    _run(benchmark, open_)


@pytest.mark.parametrize("impl", ["native", "fallback"])
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
def test_seal_per_request(benchmark: Any, impl: str, batched: bool) -> None:
    """BATCH requests either through seal_many or through BATCH seal_request calls."""
    creds = _credentials(impl)
    payloads = [PAYLOAD] * BATCH
    if batched:

        def work() -> Any:
            return vpseal.seal_many(creds, payloads)
    else:

        def work() -> Any:
            return [vpseal.seal_request(creds, p) for p in payloads]

    benchmark.group = "seal per request" if impl == "native" else "seal per request (fallback)"
    benchmark.extra_info["impl"] = f"{impl}-batch" if batched else impl
    benchmark.extra_info["per"] = BATCH
    _run(benchmark, work, iterations=5)


@pytest.mark.parametrize("impl", ["native", "fallback"])
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
def test_open_per_request(benchmark: Any, impl: str, batched: bool) -> None:
    creds = _credentials(impl)
    sealed = vpseal.seal_many(creds, [PAYLOAD] * BATCH)
    if batched:

        def work() -> Any:
            return vpseal.open_many(creds, sealed, guard=GUARD)
    else:

        def work() -> Any:
            return [vpseal.open_request(creds, s.headers, s.body, guard=GUARD) for s in sealed]

    assert all(isinstance(r, vpseal.OpenedRequest) for r in work())
    benchmark.group = "open per request" if impl == "native" else "open per request (fallback)"
    benchmark.extra_info["impl"] = f"{impl}-batch" if batched else impl
    benchmark.extra_info["per"] = BATCH
    _run(benchmark, work, iterations=5)


@pytest.mark.parametrize("threads", [1, 2], ids=["1-thread", "2-threads"])
@pytest.mark.parametrize("operation", ["seal", "open"])
def test_batch_threads(benchmark: Any, operation: str, threads: int) -> None:
    """The same 8 native batches of BATCH requests, on one thread or split over two."""
    creds = _credentials("native")
    payloads = [PAYLOAD] * BATCH
    sealed = vpseal.seal_many(creds, payloads)
    if operation == "seal":

        def one() -> Any:
            return vpseal.seal_many(creds, payloads)
    else:

        def one() -> Any:
            return vpseal.open_many(creds, sealed, guard=GUARD)

    pool = ThreadPoolExecutor(max_workers=threads)
    try:

        def work() -> None:
            for future in [pool.submit(one) for _ in range(8)]:
                future.result()

        benchmark.group = f"batch {operation} threads"
        benchmark.extra_info["impl"] = f"{threads}-thread" + ("s" if threads > 1 else "")
        _run(benchmark, work, iterations=2)
    finally:
        pool.shutdown()
