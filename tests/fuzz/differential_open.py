"""Differential fuzzing of open_request: mutate sealed requests at random (bytes of the body,
header values, truncation, splicing) and require both engines to give the same verdict: the
same payload, or the same exception class and API code. Run by hand:

    python tests/fuzz/differential_open.py [iterations] [seed]
"""

from __future__ import annotations

import os
import random
import sys

import vpseal

KEY = bytes(range(32))
# The nonce check is left out (the same seeds are opened many times); the window stays, with
# the clock pinned to when the seeds were sealed so that a long run keeps testing everything.
GUARD = vpseal.ReplayGuard.window_only()
ALPHABET = b'{}":,=+/ \\abcdefABCDEF0123456789\x00\xff'


def verdict(keys: vpseal.Credentials, headers: dict[str, str], body: bytes, now: int) -> object:
    try:
        return ("ok", vpseal.open_request(keys, headers, body, guard=GUARD, now_ms=now).payload)
    except vpseal.VPSealError as exc:
        return (type(exc).__name__, exc.api_code)


def mutate(
    rng: random.Random, headers: dict[str, str], body: bytes
) -> tuple[dict[str, str], bytes]:
    headers = dict(headers)
    choice = rng.randrange(6)
    if choice == 0 and body:
        i = rng.randrange(len(body))
        body = body[:i] + bytes([rng.choice(ALPHABET)]) + body[i + 1 :]
    elif choice == 1:
        body = body[: rng.randrange(len(body) + 1)]
    elif choice == 2:
        i = rng.randrange(len(body) + 1)
        body = body[:i] + bytes(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 6))) + body[i:]
    elif choice == 3:
        name = rng.choice(["x-timestamp", "x-nonce", "x-signature", "x-agentid"])
        value = headers[name]
        i = rng.randrange(len(value) + 1)
        headers[name] = value[:i] + rng.choice("0a9fZ -=") + value[i + 1 :]
    elif choice == 4:  # re-sign whatever the body became: reaches the wire and GCM checks
        i = rng.randrange(len(body))
        body = body[:i] + bytes([rng.choice(ALPHABET)]) + body[i + 1 :]
        headers["x-signature"] = vpseal.sign(
            headers["x-agentid"], headers["x-timestamp"], headers["x-nonce"], body
        )
    else:
        del headers[rng.choice(["x-timestamp", "x-nonce", "x-signature", "x-agentid"])]
    return headers, body


def main() -> int:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    native = vpseal.Credentials("agent", KEY, backend="native")
    fallback = vpseal.Credentials("agent", KEY, backend="fallback")
    seeds = [
        vpseal.seal_request(
            native, {"username": "player001", "n": i, "pad": "x" * rng.randrange(200)}
        )
        for i in range(50)
    ]
    now = int(seeds[0].headers["x-timestamp"])
    outcomes: dict[str, int] = {}
    for _ in range(iterations):
        sealed = rng.choice(seeds)
        headers, body = mutate(rng, sealed.headers, sealed.body)
        a, b = verdict(native, headers, body, now), verdict(fallback, headers, body, now)
        if a != b:
            print("DIFFERENT", headers, body, a, b)
            return 1
        key = str(a[0])
        outcomes[key] = outcomes.get(key, 0) + 1
    print(f"{iterations} mutated requests, both engines agree: {dict(sorted(outcomes.items()))}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("VPSEAL_BACKEND", "native")
    sys.exit(main())
