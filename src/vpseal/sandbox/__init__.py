"""A local server that speaks the VP wallet API, with a SQLite ledger and fault injection.

For development, tests and the demo: ``with Sandbox(members={"alice": "10.5"}) as sb:`` serves
on an ephemeral loopback port; ``vpseal.Client(**sb.client_kwargs())`` talks to it. The
default agent credentials are public demo values (``DEMO_*``): never use them anywhere else.

``InProcessSandbox`` is the same sandbox without a socket, reached through httpx transports
(``httpx.MockTransport`` style) for tests that stay in-process; it is imported on first use,
so the server alone never loads httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vpseal.sandbox.faults import FaultPlan, FaultRule
from vpseal.sandbox.ledger import (
    MAX_AMOUNT,
    Ledger,
    LedgerTransaction,
    from_micros,
    to_micros,
)
from vpseal.sandbox.server import (
    DEMO_AGENT_ID,
    DEMO_API_KEY,
    DEMO_SECRET,
    MAX_FIELD,
    Agent,
    LedgerOpenError,
    Sandbox,
    SandboxApp,
    SandboxConfig,
    check_username,
    valid_field,
)

if TYPE_CHECKING:
    from vpseal.sandbox.inprocess import (
        AsyncSandboxTransport,
        InProcessSandbox,
        SandboxTransport,
    )

_IN_PROCESS = ("AsyncSandboxTransport", "InProcessSandbox", "SandboxTransport")


def __getattr__(name: str) -> Any:
    if name in _IN_PROCESS:
        from vpseal.sandbox import inprocess

        return getattr(inprocess, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEMO_AGENT_ID",
    "DEMO_API_KEY",
    "DEMO_SECRET",
    "MAX_AMOUNT",
    "MAX_FIELD",
    "Agent",
    "AsyncSandboxTransport",
    "FaultPlan",
    "FaultRule",
    "InProcessSandbox",
    "Ledger",
    "LedgerOpenError",
    "LedgerTransaction",
    "Sandbox",
    "SandboxApp",
    "SandboxConfig",
    "SandboxTransport",
    "check_username",
    "from_micros",
    "to_micros",
    "valid_field",
]
