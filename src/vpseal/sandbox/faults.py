"""Fault injection for the sandbox: what a real network and a real server do to a client.

A rule fires on a request of one of its paths with its probability, at most ``count`` times
(None: no limit), and acts in one phase of the request:

- "before": before anything is read or applied (a load balancer failing, a slow network);
- "locked": for a cash-out, while the member's wallet is locked and nothing is committed yet
  (a slow ledger: concurrent requests for that member get code 20 or 35 meanwhile). Only
  cash-outs that get the lock draw these rules, so ``fired`` counts the times one acted;
- "after": after the cash-out is committed, before the answer is written (the dangerous one).

Kinds: "drop" closes the connection without an answer, "delay" sleeps ``seconds``,
"http_error" answers HTTP ``status`` with a non-envelope body, "code" answers the envelope
for API ``code`` (20 "wallet locked" before, 35 "pending" after, ...).

A "drop" in the "locked" phase closes the connection while the wallet is locked, and the server
carries on and commits the cash-out (a proxy or the client timing out while the ledger is slow):
the client has lost its answer before the commit, and its transId stays in flight (code 35 to a
retry or a query) until then. "http_error" and "code" answer before or after the cash-out, not
while the lock is held, so they are refused in that phase.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

from vpseal._protocol import AUTH_PATH, CASHOUT_PATH, QUERY_PATH

CASHOUT = CASHOUT_PATH
QUERY = QUERY_PATH
AUTH = AUTH_PATH

Kind = Literal["drop", "delay", "http_error", "code"]
Phase = Literal["before", "locked", "after"]
KINDS: tuple[str, ...] = ("drop", "delay", "http_error", "code")
PHASES: tuple[str, ...] = ("before", "locked", "after")
PATHS: tuple[str, ...] = (CASHOUT, QUERY, AUTH)
LOCKED_KINDS: tuple[str, ...] = ("delay", "drop")
MAX_SECONDS = 600.0  # a delay longer than any sensible client timeout only ties up a thread
MAX_COUNT = 10**9
MAX_CODE = 99_999
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
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        paths = (self.paths,) if isinstance(self.paths, str) else self.paths
        if not isinstance(paths, (tuple, list)) or not paths:
            raise ValueError(f"fault paths must be a non-empty list of {', '.join(PATHS)}")
        for path in paths:
            if not isinstance(path, str) or path not in PATHS:
                raise ValueError(f"fault path must be one of {', '.join(PATHS)}, got {path!r}")
        self.paths = tuple(paths)
        if self.phase is None:
            default = _DEFAULT_PHASE[self.kind]
            self.phase = default if default != "locked" or self.paths == (CASHOUT,) else "before"
        if not isinstance(self.phase, str) or self.phase not in PHASES:
            raise ValueError(f"fault phase must be one of {', '.join(PHASES)}, got {self.phase!r}")
        if self.phase == "locked":
            if self.kind not in LOCKED_KINDS:
                raise ValueError(
                    f"a {self.kind} fault answers before or after a request, not while the wallet "
                    f"is locked: phase 'locked' takes kinds {' and '.join(LOCKED_KINDS)}"
                )
            if self.paths != (CASHOUT,):
                raise ValueError(
                    f"phase 'locked' exists only for cash-outs: paths must be {CASHOUT}"
                )
        self.probability = _number("probability", self.probability, 0.0, 1.0)
        self.seconds = _number("seconds", self.seconds, 0.0, MAX_SECONDS)
        if self.count is not None:
            self.count = _integer("count", self.count, 0, MAX_COUNT)
        self.status = _integer("status", self.status, 400, 599, "an HTTP error status")
        self.code = _integer("code", self.code, 0, MAX_CODE, "an API code")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """A rule from its JSON form (the admin endpoint); ValueError names what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a fault rule must be an object with a kind, got {data!r}")
        known = {"kind", "phase", "probability", "count", "seconds", "status", "code", "paths"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(map(str, unknown)))}")
        if "kind" not in data:
            raise ValueError(f"a fault rule needs a kind: one of {', '.join(KINDS)}")
        return cls(**data)

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
            try:
                if key in ("probability", "seconds"):
                    args[key] = float(value)
                elif key in ("count", "status", "code"):
                    args[key] = int(value)
                elif key == "paths":
                    args[key] = tuple(value.split("+"))
                else:
                    args[key] = value
            except ValueError:
                raise ValueError(f"fault option {key}={value!r} is not a number") from None
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

    def draw(self, path: str, phases: Iterable[str] = ("before", "after")) -> list[FaultRule]:
        """The rules of ``path`` in one of ``phases`` that fire for this request."""
        wanted = tuple(phases)
        fired = []
        with self._lock:
            for rule in self._rules:
                if path not in rule.paths or rule.phase not in wanted:
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                fired.append(rule)
        return fired


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"fault {name} must be a number, got {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"fault {name} must be finite, got {value!r}")
    if not low <= value <= high:  # a float NaN fails this too
        raise ValueError(f"fault {name} must be within [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _integer(name: str, value: object, low: int, high: int, what: str = "an integer") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"fault {name} must be {what} ({low}-{high}), got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"fault {name} must be {what} ({low}-{high}), got {value!r}")
    return value


def in_phase(rules: Iterable[FaultRule], phase: str) -> list[FaultRule]:
    return [rule for rule in rules if rule.phase == phase]
