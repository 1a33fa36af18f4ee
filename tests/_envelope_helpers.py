"""Shared helpers for the whole-request tests (test_envelope*.py, test_replay.py,
test_fork_threads.py, test_batches.py).

Everything that states what the protocol *should* produce is written here independently of
vpseal: the reference sealer uses only json, base64, hashlib and cryptography's AESGCM, and the
tamper oracle follows SPEC.md section 4 plus the order open_request documents (header formats,
signature, replay guard, decryption, parsing).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import strategies as st

import vpseal

# -- fixed material ----------------------------------------------------------------------------

KEY_HEX = "4f1c9a8e2d7b6035e1f2a3b4c5d6e7f80912a3b4c5d6e7f8091a2b3c4d5e6f70"
KEY = bytes.fromhex(KEY_HEX)
OTHER_KEY_HEX = "0123456789abcdef" * 4
AGENT = "integratorNBTest04"
OTHER_AGENT = "integratorNBTest05"
SCHEMES = ("transfer", "pipe")
BACKENDS = ("native", "fallback")
PREFIX = b'{"cipherText":"'
SUFFIX = b'"}'
B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
SEED_PAYLOAD = {"username": "player001", "transId": "CASHOUT-20250129-001"}
# The explicit opt-out of the nonce check, for tests that open the same request more than once
# (stateless, so one is shared). The timestamp window still applies: requests sealed with a
# fixed old timestamp are opened with now_ms=<that timestamp>.
WINDOW_ONLY = vpseal.ReplayGuard.window_only()


def native_available() -> bool:
    try:
        import vpseal._native  # noqa: F401
    except ImportError:
        return False
    return True


# For hypothesis strategies: a skip inside @given would skip the fallback examples too.
AVAILABLE_BACKENDS = tuple(b for b in BACKENDS if b != "native" or native_available())


def require_backend(name: Any) -> Any:
    """Skip (as pytest.importorskip would) when the named engine cannot be loaded. None is the
    process-wide engine (VPSEAL_BACKEND), always there."""
    if name == "native":
        pytest.importorskip(
            "vpseal._native", exc_type=ImportError, reason="native engine not built here"
        )
    return name


def creds(
    backend: str | None,
    scheme: str = "transfer",
    agent: str = AGENT,
    key: str | bytes = KEY_HEX,
) -> vpseal.Credentials:
    require_backend(backend)
    return vpseal.Credentials(agent, key, scheme, backend=backend)  # type: ignore[arg-type]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- independent reference implementation ----------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def compact_json(value: Any) -> bytes:
    """What the protocol wants for a payload without Decimals: compact UTF-8, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def ref_signature(agent: str, timestamp: str, nonce: str, body: bytes, scheme: str) -> str:
    """SPEC.md section 4, computed from the body bytes with hashlib alone. For "pipe" the
    wire string is the raw bytes of a byte-exact body, else the decoded cipherText string."""
    head = (agent.encode(), timestamp.encode(), nonce.encode())
    if scheme == "transfer":
        return hashlib.sha256(b"".join(head) + body).hexdigest()
    if is_canonical(body):
        wire = body[len(PREFIX) : -len(SUFFIX)]
    else:
        text = parsed_wire(body)
        wire = ("" if text is None else text).encode("utf-8", "surrogatepass")
    return hashlib.sha256(b"|".join((*head, wire))).hexdigest()


def ref_seal(
    key: bytes,
    agent: str,
    scheme: str,
    plaintext: bytes,
    timestamp: str,
    nonce: str,
    iv: bytes,
) -> tuple[bytes, str]:
    """(body, signature) as SPEC.md sections 2-4 define them, via cryptography's AESGCM."""
    sealed = AESGCM(key).encrypt(iv, plaintext, None)
    ciphertext, tag = sealed[:-16], sealed[-16:]
    wire = b64(iv) + b64(tag) + b64(ciphertext)
    body = PREFIX + wire.encode("ascii") + SUFFIX
    return body, ref_signature(agent, timestamp, nonce, body, scheme)


def wire_of(body: bytes) -> str:
    assert body.startswith(PREFIX) and body.endswith(SUFFIX)
    return body[len(PREFIX) : -len(SUFFIX)].decode("ascii")


def iv_of(body: bytes) -> bytes:
    return base64.b64decode(wire_of(body)[:16], validate=True)


def resign(headers: Mapping[str, str], body: bytes, scheme: str, **changes: str) -> dict[str, str]:
    """Headers with some values changed and a signature recomputed over body (no secret needed:
    this is what any attacker can do)."""
    out = dict(headers)
    out.update({name.replace("_", "-"): value for name, value in changes.items()})
    out["x-signature"] = ref_signature(
        out["x-agentid"], out["x-timestamp"], out["x-nonce"], body, scheme
    )
    return out


def fresh_nonce() -> str:
    return os.urandom(16).hex()


# -- opening and classifying results -----------------------------------------------------------

OK = "ok"


def outcome(call: Callable[[], Any]) -> Any:
    """The result of call, or the exception it raised (anything but a VPSealError re-raised)."""
    try:
        return call()
    except vpseal.VPSealError as exc:
        return exc


def assert_error(
    result: object, cls: type[vpseal.VPSealError], code: int, secrets: Iterable[str] = ()
) -> None:
    """result is exactly a cls (not a subclass or sibling) with api_code == code, and none of
    its visible text holds a secret."""
    assert type(result) is cls, f"expected {cls.__name__}({code}), got {result!r}"
    assert isinstance(result, vpseal.VPSealError)
    assert result.api_code == code
    assert_no_leak(result, secrets)


def visible_text(exc: BaseException) -> str:
    """Everything a log line or traceback would show of exc and its displayed chain."""
    import traceback

    parts = [str(exc), repr(exc), *(repr(a) for a in exc.args)]
    parts.extend(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(parts)


def assert_no_leak(exc: BaseException, secrets: Iterable[str]) -> None:
    text = visible_text(exc)
    for secret in secrets:
        if secret:
            assert secret.lower() not in text.lower(), f"{type(exc).__name__} shows a secret"


# -- what a changed request should produce (SPEC.md section 4, envelope.py's order) -----------


def is_canonical(body: bytes) -> bool:
    """The engines' fast-path shape: exactly {"cipherText":"..."} with no quote or backslash."""
    if len(body) < len(PREFIX) + len(SUFFIX):
        return False
    if not (body.startswith(PREFIX) and body.endswith(SUFFIX)):
        return False
    inner = body[len(PREFIX) : -len(SUFFIX)]
    return b'"' not in inner and b"\\" not in inner


def parsed_wire(body: bytes) -> str | None:
    """The cipherText of a body that is some JSON spelling of {"cipherText": str}, else None."""
    try:
        outer = json.loads(body.decode("utf-8"), parse_float=Decimal)
    except (ValueError, RecursionError):
        return None
    if not isinstance(outer, dict) or set(outer) != {"cipherText"}:
        return None
    wire = outer["cipherText"]
    return wire if isinstance(wire, str) else None


def expected_for_body(scheme: str, original: bytes, changed: bytes) -> Any:
    """OK, or the (class, api_code) open_request must give for `changed` sent with the headers
    that were signed for `original` (no re-signing)."""
    if changed == original:
        return OK
    if is_canonical(changed):
        # The wire differs, and both schemes cover it: the signature check fails first.
        return (vpseal.SignatureError, 83)
    wire = parsed_wire(changed)
    if wire is None:
        return (vpseal.RequestFormatError, 11)
    if scheme == "transfer":  # the signature covers the exact body bytes
        return (vpseal.SignatureError, 83)
    return OK if wire == wire_of(original) else (vpseal.SignatureError, 83)


def check(result: object, expected: Any, payload: object = None, secrets: Iterable[str] = ()):
    if expected == OK:
        assert isinstance(result, vpseal.OpenedRequest), f"expected success, got {result!r}"
        if payload is not None:
            assert result.payload == payload
    else:
        cls, code = expected
        assert_error(result, cls, code, secrets)


# -- payload strategies ----------------------------------------------------------------------

# Every code point but surrogates: non-BMP, control characters, U+2028/9, NUL, quotes...
any_char = st.characters(blacklist_categories=("Cs",))
text = st.text(any_char, max_size=40)
decimals = st.one_of(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9
    ),
    st.decimals(allow_nan=False, allow_infinity=False, places=6),
    st.decimals(allow_nan=False, allow_infinity=False, places=12),
    st.decimals(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    decimals,
    text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(text, children, max_size=5),
    ),
    max_leaves=25,
)
payloads = st.dictionaries(text, json_values, max_size=8)


def big_string(seed: str, size: int) -> str:
    """A string of about size characters built from seed (cheap to generate)."""
    return (seed * (size // max(1, len(seed)) + 1))[:size]


big_payloads = st.builds(
    lambda seed, size, extra: {"blob": big_string(seed, size), **extra},
    st.text(any_char, min_size=1, max_size=12),
    st.integers(min_value=4_000, max_value=100_000),
    st.dictionaries(text, scalars, max_size=3),
)


# -- Redis --------------------------------------------------------------------------------------

REDIS_SKIP_REASON = (
    "VPSEAL_REDIS_URL is not set: no redis-server to test RedisNonceStore against "
    "(CI and scripts/test.sh start one on loopback and set it)"
)


def redis_url() -> str:
    """The test server's URL; skip only when none is configured."""
    url = os.environ.get("VPSEAL_REDIS_URL", "").strip()
    if not url:
        pytest.skip(REDIS_SKIP_REASON)
    return url


def redis_client(url: str) -> Any:
    """A connected client; a configured but unreachable server FAILS the test (never skips)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"VPSEAL_REDIS_URL={url} is set but the server is unreachable: {exc!r}")
    return client


def redis_race_worker() -> None:
    """Run in a child process: `python -c "...; redis_race_worker()" < job.json`.

    Reads one JSON job line, waits until the job's start time (so that all workers start
    together), opens every request with a ReplayGuard on a RedisNonceStore, and prints
    {"accepted": [...], "replayed": [...], "other": [...]} (indices)."""
    import sys

    job = json.loads(sys.stdin.readline())
    c = vpseal.Credentials(job["agent"], job["key"], job["scheme"], backend=job["backend"])
    store = vpseal.RedisNonceStore(url=job["url"], prefix=job["prefix"])
    guard = vpseal.ReplayGuard(store=store)
    requests = [(r["headers"], base64.b64decode(r["body"])) for r in job["requests"]]
    order = list(range(len(requests)))
    if job.get("reverse"):
        order.reverse()
    time.sleep(max(0.0, job["start_at"] - time.time()))
    result: dict[str, list[Any]] = {"accepted": [], "replayed": [], "other": []}
    for i in order:
        headers, body = requests[i]
        try:
            vpseal.open_request(c, headers, body, guard=guard)
        except vpseal.ReplayError:
            result["replayed"].append(i)
        except Exception as exc:
            result["other"].append([i, repr(exc)])
        else:
            result["accepted"].append(i)
    print(json.dumps(result), flush=True)


# -- what an exception carries ------------------------------------------------------------------

VPSEAL_SOURCE = os.path.dirname(os.path.abspath(vpseal.__file__)) + os.sep


def _holds(value: object, marker: str, depth: int = 0, seen: set[int] | None = None) -> bool:
    """Whether value (a str, bytes, container or anything with a repr) contains marker."""
    if isinstance(value, str):
        return marker in value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return marker.encode() in bytes(value)
    seen = set() if seen is None else seen
    if id(value) in seen or depth > 6:
        return False
    seen.add(id(value))
    if isinstance(value, Mapping):
        items: Iterable[object] = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        try:
            return marker in repr(value)
        except Exception:  # a repr that fails shows nothing
            return False
    return any(_holds(item, marker, depth + 1, seen) for item in items)


def exception_exposure(exc: BaseException, *, frames: bool = True) -> Iterator[tuple[str, object]]:
    """(where, value) for everything reachable from exc that a log line, an error reporter or a
    debugger could show: every exception on its __cause__ / __context__ chain, with its str,
    repr, args and every attribute (.doc of a JSONDecodeError, .object of a UnicodeError,
    __notes__...), and (frames=True) the locals of every vpseal frame on its traceback, which
    reporters such as Sentry record."""
    pending: list[tuple[str, BaseException]] = [("exc", exc)]
    seen: set[int] = set()
    while pending:
        where, current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        name = f"{where}:{type(current).__name__}"
        yield f"{name} str", str(current)
        yield f"{name} repr", repr(current)
        yield f"{name} args", current.args
        for attr in dir(current):
            if attr.startswith("__") and attr != "__notes__":
                continue
            try:
                value = getattr(current, attr)
            except Exception:
                continue
            if not callable(value):
                yield f"{name}.{attr}", value
        if frames:
            tb = current.__traceback__
            while tb is not None:
                frame = tb.tb_frame
                if frame.f_code.co_filename.startswith(VPSEAL_SOURCE):
                    for local, value in frame.f_locals.items():
                        yield f"{name} frame {frame.f_code.co_name}() local {local}", value
                tb = tb.tb_next
        for link in ("__cause__", "__context__"):
            linked = getattr(current, link)
            if linked is not None:
                pending.append((f"{where}.{link}", linked))


def assert_exception_hides(exc: BaseException, marker: str, *, frames: bool = True) -> None:
    """Nothing reachable from exc (see exception_exposure) contains marker."""
    for where, value in exception_exposure(exc, frames=frames):
        assert not _holds(value, marker), f"{where} holds the plaintext"
