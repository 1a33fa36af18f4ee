"""Every engine entry point fed bytes subclasses whose __len__ lies (longer and shorter than
the truth), run by tests/test_lying_lengths.py in a subprocess per backend so that a crash
fails the test instead of killing pytest:

    python tests/_lying_cases.py native|fallback

Each case prints "start <name>" before it runs and "<name> <outcome>" after: "ok" when the
call gave the same answer as with honest bytes, "error <Type>" for a clean exception (TypeError,
ValueError, or one of vpseal's), "WRONG" for a different answer. A crash shows as a case that
started and never finished.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

KEY = bytes(range(32))
IV = bytes(range(12))
AGENT = "agent-007"
TS = 1769746894501
NONCE = "56ffd5ecd8a3a4457863a0bd7c298fb2"
PAYLOAD = b'{"username":"player001","transId":"CASHOUT-20250129-001"}'


class LongLie(bytes):
    """Says it is 200,000 bytes longer than it is (C would read past it)."""

    def __len__(self) -> int:
        return bytes.__len__(self) + 200_000


class ShortLie(bytes):
    """Says it is empty (an output sized from it would be too small for what C writes)."""

    def __len__(self) -> int:
        return 0


LIES: dict[str, type[bytes]] = {"long": LongLie, "short": ShortLie}


def cases(backend: str) -> dict[str, Callable[[type[bytes]], tuple[Any, Any]]]:
    """name -> case(Lie) giving (answer with lying arguments, answer with honest ones)."""
    import vpseal
    from vpseal._backend import load

    engine = load(backend)
    key = engine.KeyEngine(KEY)
    gcm = vpseal.AesGcm(KEY, backend=backend)
    creds = vpseal.Credentials(AGENT, KEY, backend=backend)
    agent = AGENT.encode()
    ct = gcm.encrypt(IV, PAYLOAD, b"aad")
    fixed = {"timestamp_ms": TS, "nonce": NONCE, "iv": IV}
    sealed = vpseal.seal_request(creds, PAYLOAD, **fixed)  # type: ignore[arg-type]
    headers = (sealed.headers["x-timestamp"] + NONCE + sealed.headers["x-signature"]).encode()
    body = sealed.body
    guard = vpseal.ReplayGuard.window_only()
    seal_args = (0, agent, PAYLOAD, str(TS).encode(), NONCE.encode(), IV)
    open_args = (0, agent, headers, len(str(TS)), 32, body)

    def both(call: Callable[..., Any], *args: Any) -> Callable[[type[bytes]], tuple[Any, Any]]:
        """The call with each bytes argument that is not None wrapped in the lie."""

        def run(lie: type[bytes]) -> tuple[Any, Any]:
            lying = [lie(a) if isinstance(a, bytes) else a for a in args]
            return call(*lying), call(*args)

        return run

    def one(
        call: Callable[..., Any], args: tuple[Any, ...], index: int
    ) -> Callable[[type[bytes]], tuple[Any, Any]]:
        """The call with only argument `index` wrapped in the lie."""

        def run(lie: type[bytes]) -> tuple[Any, Any]:
            lying = list(args)
            lying[index] = lie(args[index])
            return call(*lying), call(*args)

        return run

    def opened(result: Any) -> Any:
        return result if isinstance(result, Exception) else result.payload

    table: dict[str, Callable[[type[bytes]], tuple[Any, Any]]] = {
        # AesGcm (the public AEAD API)
        "AesGcm.encrypt data": one(gcm.encrypt, (IV, PAYLOAD, b"aad"), 1),
        "AesGcm.encrypt iv": one(gcm.encrypt, (IV, PAYLOAD, b"aad"), 0),
        "AesGcm.encrypt aad": one(gcm.encrypt, (IV, PAYLOAD, b"aad"), 2),
        "AesGcm.decrypt data": one(gcm.decrypt, (IV, ct, b"aad"), 1),
        "AesGcm.decrypt iv": one(gcm.decrypt, (IV, ct, b"aad"), 0),
        "AesGcm.decrypt aad": one(gcm.decrypt, (IV, ct, b"aad"), 2),
        "AesGcm key": lambda lie: (
            vpseal.AesGcm(lie(KEY), backend=backend).encrypt(IV, PAYLOAD),
            gcm.encrypt(IV, PAYLOAD),
        ),
        # whole requests (the public API)
        "seal_request payload": lambda lie: (
            vpseal.seal_request(creds, lie(PAYLOAD), **fixed),  # type: ignore[arg-type]
            sealed,
        ),
        "seal_request payload, fresh values": lambda lie: (
            opened(
                vpseal.open_request(
                    creds, *vpseal.seal_request(creds, lie(PAYLOAD)), guard=guard
                )
            ),
            opened(vpseal.open_request(creds, *sealed, guard=guard, now_ms=TS)),
        ),
        "seal_many payloads": lambda lie: (
            [
                opened(vpseal.open_request(creds, *s, guard=guard))
                for s in vpseal.seal_many(creds, [lie(PAYLOAD), PAYLOAD, lie(b'{"b":2}')])
            ],
            [opened(vpseal.open_request(creds, *sealed, guard=guard, now_ms=TS))] * 2
            + [{"b": 2}],
        ),
        "open_request body": lambda lie: (
            opened(vpseal.open_request(creds, sealed.headers, lie(body), guard=guard, now_ms=TS)),
            opened(vpseal.open_request(creds, sealed.headers, body, guard=guard, now_ms=TS)),
        ),
        "open_many body": lambda lie: (
            [
                opened(r)
                for r in vpseal.open_many(
                    creds, [(sealed.headers, lie(body)), sealed], guard=guard, now_ms=TS
                )
            ],
            [opened(vpseal.open_request(creds, *sealed, guard=guard, now_ms=TS))] * 2,
        ),
        # the engine's own entry points
        "engine seal agent": one(key.seal, seal_args, 1),
        "engine seal plaintext": one(key.seal, seal_args, 2),
        "engine seal timestamp": one(key.seal, seal_args, 3),
        "engine seal nonce": one(key.seal, seal_args, 4),
        "engine seal iv": one(key.seal, seal_args, 5),
        "engine seal all": both(key.seal, *seal_args),
        "engine seal fresh plaintext": lambda lie: (
            key.open(0, agent, *_headers(key.seal(0, agent, lie(PAYLOAD)))),
            (0, PAYLOAD),
        ),
        "engine seal_many": lambda lie: (
            [
                key.open(0, agent, *_headers(s))
                for s in key.seal_many(0, lie(agent), [lie(PAYLOAD), PAYLOAD, lie(b"{}")])
            ],
            [(0, PAYLOAD), (0, PAYLOAD), (0, b"{}")],
        ),
        "engine open agent": one(key.open, open_args, 1),
        "engine open headers": one(key.open, open_args, 2),
        "engine open body": one(key.open, open_args, 5),
        "engine open all": both(key.open, *open_args),
        "engine open_batch": lambda lie: (
            key.open_batch(
                [
                    (key, 0, lie(agent), headers, len(str(TS)), 32, body),
                    (key, 0, agent, lie(headers), len(str(TS)), 32, lie(body)),
                    (key, 0, agent, headers, len(str(TS)), 32, body),
                ]
            ),
            [key.open(*open_args)] * 3,
        ),
        "engine sha256_hex": lambda lie: (
            engine.sha256_hex(lie(PAYLOAD)),
            engine.sha256_hex(PAYLOAD),
        ),
        "engine key": lambda lie: (
            engine.KeyEngine(lie(KEY)).encrypt(IV, PAYLOAD),
            key.encrypt(IV, PAYLOAD),
        ),
    }
    return table


def _headers(sealed: tuple[bytes, str, str, str]) -> tuple[bytes, int, int, bytes]:
    """(headers, ts_len, nonce_len, body) for KeyEngine.open from KeyEngine.seal's answer."""
    body, ts, nonce, signature = sealed
    return (ts + nonce + signature).encode(), len(ts), len(nonce), body


def names() -> list[str]:
    """Every case name, for parametrising (without loading an engine)."""
    return [f"{case} ({lie})" for case in _CASE_NAMES for lie in LIES]


_CASE_NAMES = [
    "AesGcm.encrypt data",
    "AesGcm.encrypt iv",
    "AesGcm.encrypt aad",
    "AesGcm.decrypt data",
    "AesGcm.decrypt iv",
    "AesGcm.decrypt aad",
    "AesGcm key",
    "seal_request payload",
    "seal_request payload, fresh values",
    "seal_many payloads",
    "open_request body",
    "open_many body",
    "engine seal agent",
    "engine seal plaintext",
    "engine seal timestamp",
    "engine seal nonce",
    "engine seal iv",
    "engine seal all",
    "engine seal fresh plaintext",
    "engine seal_many",
    "engine open agent",
    "engine open headers",
    "engine open body",
    "engine open all",
    "engine open_batch",
    "engine sha256_hex",
    "engine key",
]


def main(backend: str) -> int:
    import vpseal

    table = cases(backend)
    assert sorted(table) == sorted(_CASE_NAMES), "case list out of date"
    for case in _CASE_NAMES:
        for lie_name, lie in LIES.items():
            name = f"{case} ({lie_name})"
            print(f"start {name}", flush=True)
            try:
                lying, honest = table[case](lie)
            except (TypeError, ValueError, vpseal.VPSealError) as exc:
                outcome = f"error {type(exc).__name__}"
            else:
                outcome = "ok" if lying == honest else "WRONG"
            print(f"{name} {outcome}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
