"""Fixtures for the transport tests: sandboxes on ephemeral loopback ports and clients for them.

Loaded by the transport test modules with ``pytest_plugins = ["_sandbox_helpers"]``, so that
tests/conftest.py stays the other suites' file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

import vpseal
from vpseal.sandbox import Sandbox, SandboxConfig

# Short timeouts and backoff: a retry costs milliseconds here, not seconds.
FAST = {"timeout": 2.0, "max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05}

MakeSandbox = Callable[..., Sandbox]


def _http_options() -> list[Any]:
    options: list[Any] = ["httpx"]
    try:
        import pyreqwest  # noqa: F401
    except ImportError as exc:
        reason = f"pyreqwest cannot be imported here ({exc})"
        options.append(pytest.param("pyreqwest", marks=pytest.mark.skip(reason=reason)))
    else:
        options.append("pyreqwest")
    return options


def _loads_these_helpers(module: object) -> bool:
    return "_sandbox_helpers" in getattr(module, "pytest_plugins", ())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test of a module that loads these helpers runs once per HTTP option. Once loaded,
    a plugin's hooks and autouse fixtures reach every module, so the others are left alone
    here: their tests would otherwise run twice for nothing."""
    if "http_option" in metafunc.fixturenames and _loads_these_helpers(metafunc.module):
        metafunc.parametrize("http_option", _http_options(), indirect=True)


@pytest.fixture(autouse=True)
def http_option(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The HTTP option of this test run: clients that name none use it, so no behaviour exists
    on one option and not another (outside the modules that load these helpers: the default)."""
    option: str | None = getattr(request, "param", None)
    if option is None:
        return str(vpseal.client.default_http)
    monkeypatch.setattr(vpseal.client, "default_http", option)
    return option


@pytest.fixture
def fast() -> dict[str, Any]:
    """Client options for tests (see FAST)."""
    return dict(FAST)


@pytest.fixture
def make_sandbox() -> Iterator[MakeSandbox]:
    """Start sandboxes with any SandboxConfig option; all are closed after the test."""
    started: list[Sandbox] = []

    def make(**options: Any) -> Sandbox:
        sandbox = Sandbox(SandboxConfig(), **options).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.close()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return make_sandbox()


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[vpseal.Client]:
    with vpseal.Client(**sandbox.client_kwargs(), **FAST) as c:
        yield c


@pytest.fixture
async def aclient(sandbox: Sandbox) -> AsyncIterator[vpseal.AsyncClient]:
    async with vpseal.AsyncClient(**sandbox.client_kwargs(), **FAST) as c:
        yield c
