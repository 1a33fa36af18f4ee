"""Fault injection for the sandbox: what a real network and a real server do to a client.

A rule fires on a request of one of its paths with its probability, at most ``count`` times
(None: no limit), and acts in one phase of the request:

- "before": before anything is read or applied (a load balancer failing, a slow network);
- "locked": for a cash-out, while the member's wallet is locked and nothing is committed yet
  (a slow ledger: concurrent requests for that member get code 20 or 35 meanwhile);
- "after": after the cash-out is committed, before the answer is written (the dangerous one).

Kinds: "drop" closes the connection without an answer, "delay" sleeps ``seconds``,
"http_error" answers HTTP ``status`` with a non-envelope body, "code" answers the envelope
for API ``code`` (20 "wallet locked" before, 35 "pending" after, ...).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CASHOUT = "/v2/members/cashout"
QUERY = "/v2/members/check/transactions"
AUTH = "/v2/auth"

Kind = Literal["drop", "delay", "http_error", "code"]
Phase = Literal["before", "locked", "after"]
KINDS: tuple[str, ...] = ("drop", "delay", "http_error", "code")
PHASES: tuple[str, ...] = ("before", "locked", "after")
_DEFAULT_PHASE: dict[str, Phase] = {
    "drop": "after",
    "delay": "locked",
    "http_error": "before",
    "code": "before",
}


@dataclass
class FaultRule:
    """One fault; see the module docstring. ``fired`` counts how often it acted."""

    kind: Kind
    phase: Phase | None = None
    probability: float = 1.0
    count: int | None = None
    seconds: float = 0.0
    status: int = 503
    code: int = 20
    paths: tuple[str, ...] = (CASHOUT,)
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(KINDS)}")
        if self.phase is None:
            self.phase = _DEFAULT_PHASE[self.kind]
        if self.phase not in PHASES:
            raise ValueError(f"fault phase must be one of {', '.join(PHASES)}")
        if not 0.0 <= float(self.probability) <= 1.0:
            raise ValueError("fault probability must be within [0, 1]")
        if self.count is not None and self.count < 0:
            raise ValueError("fault count must be >= 0")
        if self.seconds < 0:
            raise ValueError("fault seconds must be >= 0")
        if not 400 <= self.status <= 599:
            raise ValueError("fault status must be an HTTP error status (400-599)")
        self.paths = tuple(self.paths)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        known = {"kind", "phase", "probability", "count", "seconds", "status", "code", "paths"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        args = dict(data)
        if "paths" in args:
            paths = args["paths"]
            args["paths"] = (paths,) if isinstance(paths, str) else tuple(paths)
        return cls(**args)

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """'kind[:key=value,...]', e.g. 'drop:p=0.1', 'delay:seconds=2,count=3',
        'http_error:status=502,phase=after', 'code:code=20,p=0.2', 'drop:paths=/v2/auth'."""
        kind, _, rest = spec.partition(":")
        args: dict[str, Any] = {"kind": kind.strip()}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"fault option {item!r} is not key=value")
            key = {"p": "probability", "n": "count", "next": "count"}.get(key, key)
            if key in ("probability", "seconds"):
                args[key] = float(value)
            elif key in ("count", "status", "code"):
                args[key] = int(value)
            elif key == "paths":
                args[key] = tuple(value.split("+"))
            else:
                args[key] = value
        return cls.from_dict(args)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["paths"] = list(self.paths)
        return data


class FaultPlan:
    """The active rules; ``draw`` decides, thread-safely, which fire for one request."""

    def __init__(self, rules: Iterable[FaultRule] = (), seed: int | None = None) -> None:
        self._rules = list(rules)
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def replace(self, rules: Iterable[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def draw(self, path: str) -> list[FaultRule]:
        fired = []
        with self._lock:
            for rule in self._rules:
                if path not in rule.paths:
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                fired.append(rule)
        return fired


def in_phase(rules: Iterable[FaultRule], phase: str) -> list[FaultRule]:
    return [rule for rule in rules if rule.phase == phase]
