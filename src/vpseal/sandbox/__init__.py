"""A local server that speaks the VP wallet API, with a SQLite ledger and fault injection.

For development, tests and the demo: ``with Sandbox(members={"alice": "10.5"}) as sb:`` serves
on an ephemeral loopback port; ``vpseal.Client(**sb.client_kwargs())`` talks to it. The
default agent credentials are public demo values (``DEMO_*``): never use them anywhere else.
"""

from __future__ import annotations

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

__all__ = [
    "DEMO_AGENT_ID",
    "DEMO_API_KEY",
    "DEMO_SECRET",
    "MAX_AMOUNT",
    "MAX_FIELD",
    "Agent",
    "FaultPlan",
    "FaultRule",
    "Ledger",
    "LedgerOpenError",
    "LedgerTransaction",
    "Sandbox",
    "SandboxApp",
    "SandboxConfig",
    "check_username",
    "from_micros",
    "to_micros",
    "valid_field",
]
