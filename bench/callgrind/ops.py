"""The operations the instruction-count gate measures, and their peers.

Each operation is a factory that does its set-up (keys, sealed requests, clients) and returns a
callable of no arguments doing ``per`` requests' work. Factories import what they need, so a
run restricted to a few operations (``--ops``) does not pay for the others' imports under
valgrind. ``impl`` is "native" or "fallback" (vpseal on that engine: gated) or the name of a
peer (counted in the same run, shown as a ratio, never gated).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

AGENT = "integratorNBTest04"
KEY = bytes(range(32))
IV = bytes(range(12))
PAYLOAD = {"username": "player001", "transId": "CASHOUT-20250129-001"}
SIZES = {"64 B": 64, "1 KiB": 1024, "16 KiB": 16384}
BATCH = 100  # requests per seal_many/open_many call
ENGINES = ("native", "fallback")
# the peer each engine is sold against (SPEC.md pipelines in bench/pipelines.py)
PEER_OF = {"native": "cryptography", "fallback": "pycryptodome"}

Work = Callable[[], Any]
CLIENT_SYNC = "client own work per cash-out, sync"
CLIENT_ASYNC = "client own work per cash-out, async"
PARSING = "answer parsing (classify_response)"


@dataclass(frozen=True)
class Op:
    group: str  # what is done, e.g. "seal cash-out"
    impl: str  # "native" | "fallback" | a peer's name
    factory: Callable[[], Work]
    per: int = 1  # requests per call of the work
    engine: str | None = None  # the process-wide engine it needs (VPSEAL_BACKEND), if any
    heavy: bool = False  # hundreds of thousands of instructions a call: fewer calls (peers)

    @property
    def key(self) -> str:
        return f"{self.group} [{self.impl}]"

    @property
    def gated(self) -> bool:
        return self.impl in ENGINES

    @property
    def process(self) -> str:
        """The valgrind process that counts it: one per engine (VPSEAL_BACKEND set to it)."""
        if self.engine is not None:
            return self.engine
        return "fallback" if self.impl in ("fallback", "pycryptodome") else "native"


def calls(op: Op, n: int) -> int:
    """N for one operation: n calls of a single request, fewer of a batch (at least 3)."""
    if op.per > 1:
        return max(3, n // 10)
    return max(3, n // 6) if op.heavy else n


def _creds(impl: str) -> Any:
    import vpseal

    return vpseal.Credentials(AGENT, KEY, backend=impl)


def _guard() -> Any:
    import vpseal

    # the same requests are opened again and again: the window is checked, nonces are not
    return vpseal.ReplayGuard.window_only()


def _seal(impl: str) -> Work:
    import vpseal

    creds = _creds(impl)
    return lambda: vpseal.seal_request(creds, PAYLOAD)


def _open(impl: str) -> Work:
    import vpseal

    creds, guard = _creds(impl), _guard()
    headers, body = vpseal.seal_request(creds, PAYLOAD)
    return lambda: vpseal.open_request(creds, headers, body, guard=guard)


def _seal_many(impl: str) -> Work:
    import vpseal

    creds, payloads = _creds(impl), [PAYLOAD] * BATCH
    return lambda: vpseal.seal_many(creds, payloads)


def _open_many(impl: str) -> Work:
    import vpseal

    creds, guard = _creds(impl), _guard()
    sealed = vpseal.seal_many(creds, [PAYLOAD] * BATCH)
    return lambda: vpseal.open_many(creds, sealed, guard=guard)


def _pipeline(peer: str) -> Any:
    from pipelines import CryptographyPipeline, PycryptodomePipeline

    cls = CryptographyPipeline if peer == "cryptography" else PycryptodomePipeline
    return cls(AGENT, KEY)


def _peer_seal(peer: str) -> Work:
    pipe = _pipeline(peer)
    return lambda: pipe.seal(PAYLOAD)


def _peer_open(peer: str) -> Work:
    pipe = _pipeline(peer)
    headers, body = pipe.seal(PAYLOAD)
    return lambda: pipe.open(headers, body)


def _aead(impl: str, decrypt: bool, size: int) -> Work:
    data = os.urandom(size)
    if impl in ENGINES:
        import vpseal

        box = vpseal.AesGcm(KEY, backend=impl)
        if decrypt:
            sealed = box.encrypt(IV, data)
            return lambda: box.decrypt(IV, sealed)
        return lambda: box.encrypt(IV, data)
    if impl == "cryptography":
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aead = AESGCM(KEY)
        if decrypt:
            sealed = aead.encrypt(IV, data, None)
            return lambda: aead.decrypt(IV, sealed, None)
        return lambda: aead.encrypt(IV, data, None)
    from Crypto.Cipher import AES  # pycryptodome used naively: AES.new per message

    if decrypt:
        ct, tag = AES.new(KEY, AES.MODE_GCM, nonce=IV).encrypt_and_digest(data)
        return lambda: AES.new(KEY, AES.MODE_GCM, nonce=IV).decrypt_and_verify(ct, tag)
    return lambda: AES.new(KEY, AES.MODE_GCM, nonce=IV).encrypt_and_digest(data)


_BODY = b'{"cipherText":"' + b"A" * 96 + b'"}'
_SIGNED = (AGENT, "1738140000000", "0123456789abcdef0123456789abcdef", _BODY)


def _sign(impl: str) -> Work:
    from vpseal.signing import sign

    return lambda: sign(*_SIGNED)


def _peer_sign(peer: str) -> Work:
    agent, timestamp, nonce, body = _SIGNED
    # what the hand-written pipelines do (bench/pipelines.py _headers)
    return lambda: hashlib.sha256((agent + timestamp + nonce).encode() + body).hexdigest()


def _classify(impl: str) -> Work:
    from client_stubs import ANSWER

    from vpseal._client_core import classify_response

    return lambda: classify_response(200, ANSWER)


def _client_sync(impl: str) -> Work:
    from client_stubs import stub_client

    client, ids = stub_client(), (f"T-{i}" for i in itertools.count())
    return lambda: client.cashout("player001", next(ids))


def _client_async(impl: str) -> Work:
    from client_stubs import stub_async_client

    client, ids = stub_async_client(), (f"T-{i}" for i in itertools.count())
    loop = asyncio.new_event_loop()

    async def many() -> None:
        for _ in range(BATCH):
            await client.cashout("player001", next(ids))

    return lambda: loop.run_until_complete(many())


def _bind(factory: Callable[[str], Work], impl: str) -> Callable[[], Work]:
    return lambda: factory(impl)


def _aead_ops(impl: str) -> list[Op]:
    ops = []
    for name, size in SIZES.items():
        for decrypt in (False, True):
            group = f"{'decrypt' if decrypt else 'encrypt'} {name}"
            # the peers' AES.new per message costs 400k+: fewer calls (never gated)
            heavy = impl == "pycryptodome"
            ops.append(Op(group, impl, functools.partial(_aead, impl, decrypt, size), heavy=heavy))
    return ops


def all_ops() -> list[Op]:
    """Every operation, in a stable order: vpseal's on each engine, then the peers."""
    ops: list[Op] = []
    for engine in ENGINES:
        peer = PEER_OF[engine]
        heavy = peer == "pycryptodome"
        ops += [
            Op("seal cash-out", engine, _bind(_seal, engine)),
            Op("open cash-out", engine, _bind(_open, engine)),
            Op("seal per request, batch", engine, _bind(_seal_many, engine), per=BATCH),
            Op("open per request, batch", engine, _bind(_open_many, engine), per=BATCH),
            *_aead_ops(engine),
            Op("signature", engine, _bind(_sign, engine), engine=engine),
            Op(CLIENT_SYNC, engine, _bind(_client_sync, engine), engine=engine),
            Op(CLIENT_ASYNC, engine, _bind(_client_async, engine), per=BATCH, engine=engine),
            Op("seal cash-out", peer, _bind(_peer_seal, peer), heavy=heavy),
            Op("open cash-out", peer, _bind(_peer_open, peer), heavy=heavy),
            *_aead_ops(peer),
        ]
    # answer parsing has no engine in it: counted once (in the native process)
    ops.append(Op(PARSING, "native", _bind(_classify, "native"), engine="native"))
    ops.append(Op("signature", "hashlib", _bind(_peer_sign, "hashlib")))
    return ops
