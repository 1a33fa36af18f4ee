"""Both engines raise the same exception type for the same bad input (item 6 of issue 9), and
only the types _backend documents: TypeError, ValueError, InvalidTag (never OverflowError,
RuntimeError or a crash). Header lengths that do not fit are a status, not an exception, so
that in a batch each request keeps its own verdict."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from _envelope_helpers import WINDOW_ONLY

import vpseal
from vpseal._protocol import OPEN_BAD_NONCE, OPEN_BAD_TIMESTAMP, OPEN_OK

KEY = bytes(range(32))
IV = bytes(12)
AGENT = b"agent"
PT = b'{"a":1}'
TS = b"1769746894501"
NONCE = b"56ffd5ecd8a3a4457863a0bd7c298fb2"
DOCUMENTED = (TypeError, ValueError, vpseal.InvalidTag)


@pytest.fixture(scope="module")
def engines() -> dict[str, ModuleType]:
    from vpseal import _fallback

    native = pytest.importorskip(
        "vpseal._native", exc_type=ImportError, reason="native engine not built here"
    )
    return {"native": native, "fallback": _fallback}


def _request(engine: ModuleType) -> tuple[bytes, bytes, int]:
    """(headers, body, ts_len) of a request sealed with fixed values."""
    body, ts, nonce, sig = engine.KeyEngine(KEY).seal(0, AGENT, PT, TS, NONCE, IV)
    return (ts + nonce + sig).encode(), body, len(ts)


def _open(**changes: Any) -> Callable[[ModuleType], Any]:
    def run(engine: ModuleType) -> Any:
        headers, body, ts_len = _request(engine)
        args = {"scheme": 0, "agent_id": AGENT, "headers": headers, "ts_len": ts_len,
                "nonce_len": 32, "body": body}  # fmt: skip
        args.update(changes)
        return engine.KeyEngine(KEY).open(**args)

    return run


def _seal(**changes: Any) -> Callable[[ModuleType], Any]:
    def run(engine: ModuleType) -> Any:
        args = {"scheme": 0, "agent_id": AGENT, "plaintext": PT}
        args.update(changes)
        return engine.KeyEngine(KEY).seal(**args)

    return run


def _seal_many(scheme: Any = 0, agent_id: Any = AGENT, plaintexts: Any = (PT,)) -> Any:
    return lambda engine: engine.KeyEngine(KEY).seal_many(scheme, agent_id, plaintexts)


def _crypt(op: str, *args: Any) -> Callable[[ModuleType], Any]:
    return lambda engine: getattr(engine.KeyEngine(KEY), op)(*args)


BIG = 2**70  # beyond any C integer type: cffi's OverflowError must not leak out

BAD_INPUTS: dict[str, Callable[[ModuleType], Any]] = {
    # keys
    "key 31 bytes": lambda e: e.KeyEngine(bytes(31)),
    "key 33 bytes": lambda e: e.KeyEngine(bytes(33)),
    "key str": lambda e: e.KeyEngine("k" * 32),
    "key int": lambda e: e.KeyEngine(32),
    "key None": lambda e: e.KeyEngine(None),
    # AES-GCM
    "encrypt iv 11 bytes": _crypt("encrypt", bytes(11), PT),
    "encrypt iv str": _crypt("encrypt", "i" * 12, PT),
    "encrypt plaintext str": _crypt("encrypt", IV, "text"),
    "encrypt plaintext None": _crypt("encrypt", IV, None),
    "encrypt aad str": _crypt("encrypt", IV, PT, "aad"),
    "encrypt aad int": _crypt("encrypt", IV, PT, 5),
    "decrypt iv 13 bytes": _crypt("decrypt", bytes(13), bytes(32)),
    "decrypt data str": _crypt("decrypt", IV, "d" * 32),
    "decrypt data shorter than a tag": _crypt("decrypt", IV, bytes(15)),
    "decrypt tampered": _crypt("decrypt", IV, bytes(40)),
    "decrypt aad list": _crypt("decrypt", IV, bytes(32), [1]),
    # seal
    "seal scheme 2": _seal(scheme=2),
    "seal scheme -1": _seal(scheme=-1),
    "seal scheme 2**70": _seal(scheme=BIG),
    "seal scheme str": _seal(scheme="0"),
    "seal scheme float": _seal(scheme=0.0),
    "seal scheme None": _seal(scheme=None),
    "seal agent str": _seal(agent_id="agent"),
    "seal plaintext empty": _seal(plaintext=b""),
    "seal plaintext str": _seal(plaintext="text"),
    "seal plaintext None": _seal(plaintext=None),
    "seal timestamp not digits": _seal(timestamp=b"12x"),
    "seal timestamp empty": _seal(timestamp=b""),
    "seal timestamp 17 digits": _seal(timestamp=b"1" * 17),
    "seal timestamp str": _seal(timestamp="123"),
    "seal timestamp int": _seal(timestamp=123),
    "seal nonce uppercase": _seal(nonce_hex=NONCE.upper()),
    "seal nonce short": _seal(nonce_hex=NONCE[:31]),
    "seal nonce str": _seal(nonce_hex=NONCE.decode()),
    "seal iv 11 bytes": _seal(iv=bytes(11)),
    "seal iv str": _seal(iv="i" * 12),
    # seal_many
    "seal_many scheme 5": _seal_many(scheme=5),
    "seal_many scheme 2**70": _seal_many(scheme=BIG),
    "seal_many scheme 5, no plaintexts": _seal_many(scheme=5, plaintexts=[]),
    "seal_many agent str": _seal_many(agent_id="agent"),
    "seal_many an empty plaintext": _seal_many(plaintexts=[PT, b""]),
    "seal_many a str plaintext": _seal_many(plaintexts=[PT, "text"]),
    "seal_many bytes for plaintexts": _seal_many(plaintexts=PT),
    "seal_many None for plaintexts": _seal_many(plaintexts=None),
    # open (arguments no request could have)
    "open scheme 7": _open(scheme=7),
    "open scheme 2**70": _open(scheme=BIG),
    "open scheme str": _open(scheme="x"),
    "open agent None": _open(agent_id=None),
    "open headers str": _open(headers="1769746894501"),
    "open body str": _open(body="{}"),
    "open ts_len float": _open(ts_len=13.0),
    "open nonce_len None": _open(nonce_len=None),
    # the engine's own helpers
    "random_bytes -1": lambda e: e.random_bytes(-1),
    "random_bytes 2**31": lambda e: e.random_bytes(2**31),
    "random_bytes 2**70": lambda e: e.random_bytes(BIG),
    "random_bytes float": lambda e: e.random_bytes(1.5),
    "random_bytes str": lambda e: e.random_bytes("3"),
    "sha256_hex str": lambda e: e.sha256_hex("abc"),
    "sha256_hex None": lambda e: e.sha256_hex(None),
    "sha256_hex int": lambda e: e.sha256_hex(5),
}


def _outcome(engines: dict[str, ModuleType], call: Callable[[ModuleType], Any]) -> set[Any]:
    kinds = set()
    for engine in engines.values():
        try:
            call(engine)
        except Exception as exc:
            kinds.add(type(exc))
        else:
            kinds.add(None)
    return kinds


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_both_engines_raise_the_same_documented_type(
    engines: dict[str, ModuleType], name: str
) -> None:
    kinds = _outcome(engines, BAD_INPUTS[name])
    assert len(kinds) == 1, f"engines disagree: {kinds}"
    (kind,) = kinds
    assert kind is not None, "accepted"
    assert issubclass(kind, DOCUMENTED), kind


# Header lengths that do not fit the header bytes: the status of the header they break.
SPLITS: dict[str, tuple[dict[str, Any], int]] = {
    "ts_len -1": ({"ts_len": -1}, OPEN_BAD_TIMESTAMP),
    "ts_len beyond the headers": ({"ts_len": 1000}, OPEN_BAD_TIMESTAMP),
    "ts_len 2**70": ({"ts_len": BIG}, OPEN_BAD_TIMESTAMP),
    "nonce_len -1": ({"nonce_len": -1}, OPEN_BAD_NONCE),
    "nonce_len beyond the headers": ({"nonce_len": 1000}, OPEN_BAD_NONCE),
    "nonce_len 2**70": ({"nonce_len": BIG}, OPEN_BAD_NONCE),
    "both -1": ({"ts_len": -1, "nonce_len": -1}, OPEN_BAD_TIMESTAMP),
}


@pytest.mark.parametrize("name", list(SPLITS))
def test_header_split_that_does_not_fit_is_a_status(
    engines: dict[str, ModuleType], name: str
) -> None:
    changes, status = SPLITS[name]
    for engine in engines.values():
        assert _open(**changes)(engine) == (status, None), engine.NAME


def test_open_batch_keeps_a_bad_split_in_its_own_slot(engines: dict[str, ModuleType]) -> None:
    for engine in engines.values():
        key = engine.KeyEngine(KEY)
        headers, body, ts_len = _request(engine)
        good = (key, 0, AGENT, headers, ts_len, 32, body)
        items = [good]
        items += [(key, 0, AGENT, headers, c.get("ts_len", ts_len), c.get("nonce_len", 32), body)
                  for c, _ in SPLITS.values()]  # fmt: skip
        items.append(good)
        expected = [(OPEN_OK, PT)] + [(s, None) for _, s in SPLITS.values()] + [(OPEN_OK, PT)]
        assert engine.KeyEngine.open_batch(items) == expected, engine.NAME


@pytest.mark.parametrize(
    "change",
    [{"scheme": 9}, {"scheme": "x"}, {"agent": None}, {"engine": "other"}],
    ids=["scheme 9", "scheme str", "agent None", "engine of the other class"],
)
def test_open_batch_raises_the_same_type_for_impossible_items(
    engines: dict[str, ModuleType], change: dict[str, Any]
) -> None:
    kinds = set()
    for name, engine in engines.items():
        key = engine.KeyEngine(KEY)
        headers, body, ts_len = _request(engine)
        other = engines["fallback" if name == "native" else "native"].KeyEngine(KEY)
        item = (
            other if change.get("engine") else key, change.get("scheme", 0),
            change.get("agent", AGENT), headers, ts_len, 32, body,
        )  # fmt: skip
        try:
            engine.KeyEngine.open_batch([(key, 0, AGENT, headers, ts_len, 32, body), item])
        except Exception as exc:
            kinds.add(type(exc))
        else:
            kinds.add(None)
    assert len(kinds) == 1 and None not in kinds, kinds
    assert issubclass(next(iter(kinds)), DOCUMENTED)


class _LongStr(str):
    """A header value that says it is longer than it is."""

    def __len__(self) -> int:
        return 1000


class _NegativeStr(str):
    """A header value whose __len__ is invalid (len() itself raises ValueError)."""

    def __len__(self) -> int:
        return -1


@pytest.mark.parametrize(
    ("name", "lying"), [("x-timestamp", _LongStr), ("x-nonce", _NegativeStr)]
)
def test_a_header_subclass_that_lies_about_its_length_is_read_by_its_text(
    backend: str, name: str, lying: type[str]
) -> None:
    """A str subclass (some frameworks hand those out) is taken by its exact text, once: its
    __len__ never reaches the engine or the replay store, in open_request and in open_many."""
    c = vpseal.Credentials("agent", KEY, backend=backend)
    sealed = vpseal.seal_request(c, {"a": 1})
    headers = dict(sealed.headers)
    headers[name] = lying(headers[name])
    results = vpseal.open_many(c, [(headers, sealed.body), sealed], guard=WINDOW_ONLY)
    for result in results:
        assert isinstance(result, vpseal.OpenedRequest)
        assert result.payload == {"a": 1}
        assert type(result.nonce) is str and result.nonce == sealed.headers["x-nonce"]
        assert result.timestamp_ms == int(sealed.headers["x-timestamp"])
    opened = vpseal.open_request(c, headers, sealed.body, guard=WINDOW_ONLY)
    assert opened.payload == {"a": 1} and type(opened.nonce) is str
    # and the nonce store sees the exact text: the lying copy is a replay of the real one
    guard = vpseal.ReplayGuard()
    vpseal.open_request(c, sealed.headers, sealed.body, guard=guard)
    with pytest.raises(vpseal.ReplayError):
        vpseal.open_request(c, headers, sealed.body, guard=guard)
