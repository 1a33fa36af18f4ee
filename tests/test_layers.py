"""Layers that repeat each other, pinned one at a time: where a fast path and a slow path (or
an engine and the Python before it) give the same answer, which one answers, and that each
still answers right on its own at its edges."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from vpseal import _fallback
from vpseal._client_core import Send
from vpseal._protocol import OPEN_BAD_TIMESTAMP, OPEN_OK

KEY = bytes(range(32))
AGENT = b"agent-l"
TS = b"1700000000000"
NONCE = b"0123456789abcdef0123456789abcdef"
IV = bytes(12)


def _engines() -> list[Any]:
    engines: list[Any] = [_fallback]
    try:
        from vpseal import _native
    except ImportError:  # pragma: no cover - no native build here
        pass
    else:
        engines.append(_native)
    return engines


def test_fallback_random_bytes_takes_the_fast_path_for_every_valid_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def slow(n: object) -> int:
        raise AssertionError(f"random_count({n!r}) called for a valid count")

    monkeypatch.setattr(_fallback, "random_count", slow)
    assert _fallback.random_bytes(0) == b""
    assert len(_fallback.random_bytes(1)) == 1
    assert len(_fallback.random_bytes(33)) == 33


@pytest.mark.parametrize("n", [-1, _fallback.RANDOM_MAX + 1, 1.0, "1"])
def test_fallback_random_bytes_refuses_other_counts(n: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        _fallback.random_bytes(n)


@pytest.mark.parametrize("engine", _engines(), ids=lambda e: e.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("ts_len", [0, -1])
def test_an_empty_or_negative_timestamp_split_is_a_bad_timestamp(
    engine: ModuleType, ts_len: int
) -> None:
    body, ts, nonce, sig = engine.KeyEngine(KEY).seal(0, AGENT, b'{"a":1}', TS, NONCE, IV)
    headers = (ts + nonce + sig).encode()
    status, plaintext = engine.KeyEngine(KEY).open(0, AGENT, headers, ts_len, 32, body)
    assert (status, plaintext) == (OPEN_BAD_TIMESTAMP, None)
    status, plaintext = engine.KeyEngine(KEY).open(0, AGENT, headers, len(ts), 32, body)
    assert status == OPEN_OK and plaintext == b'{"a":1}'


def test_send_defaults() -> None:
    send = Send("/p", {}, True)
    assert (send.delay, send.renew_token, send.attempt, send.reason) == (0.0, False, 1, "")
    assert repr(send) == "Send(path='/p', attempt=1, delay=0.000)"


def test_fallback_aes_uses_pycryptodomes_raw_ecb_where_it_can() -> None:
    """The fast path of the fallback's AES calls pycryptodome's C function directly; the
    public ECB object is only the fallback for other versions (same bytes, slower)."""
    from Crypto.Cipher import AES
    from Crypto.Util import _raw_api

    if _raw_api.backend != "cffi":  # pragma: no cover - pycryptodome on ctypes
        pytest.skip("pycryptodome uses ctypes here: no raw calls")
    assert _fallback._ffi is _raw_api.ffi and _fallback._raw_ecb is not None
    key = bytes(range(32))
    encrypt = _fallback._make_ecb(key)
    assert not hasattr(encrypt, "__self__")  # not the bound AES.encrypt
    blocks = bytes(range(64))
    assert bytes(encrypt(blocks)) == AES.new(key, AES.MODE_ECB).encrypt(blocks)
    with pytest.raises(ValueError, match="whole number of blocks"):
        encrypt(b"x" * 15)


LONG = _fallback._LONG


@pytest.mark.parametrize(
    ("pt_len", "aad_len", "long"),
    [(LONG, 0, False), (LONG + 1, 0, True), (0, LONG, False), (1, LONG + 1, True),
     (LONG, LONG, False)],
)  # fmt: skip
def test_fallback_gcm_short_and_long_paths_meet_at_the_limit(
    monkeypatch: pytest.MonkeyPatch, pt_len: int, aad_len: int, long: bool
) -> None:
    """Up to _LONG bytes the fallback's GCM runs its two-call short path, beyond it the
    chained long one: both must agree with an independent AES-GCM, and the limit is exact."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    used: list[str] = []
    engine_class = _fallback.KeyEngine
    for name in ("_encrypt_long", "_decrypt_long"):
        real = getattr(engine_class, name)

        def spy(self: Any, *args: Any, _real: Any = real, _name: str = name) -> Any:
            used.append(_name)
            return _real(self, *args)

        monkeypatch.setattr(engine_class, name, spy)
    key, iv = bytes(range(32)), bytes(range(12))
    pt, aad = bytes(i % 251 for i in range(pt_len)), b"a" * aad_len
    engine = engine_class(key)
    sealed = engine.encrypt(iv, pt, aad or None)
    assert sealed == AESGCM(key).encrypt(iv, pt, aad or None)
    assert engine.decrypt(iv, sealed, aad or None) == pt
    assert used == (["_encrypt_long", "_decrypt_long"] if long else [])


@pytest.mark.parametrize(("size", "long"), [(LONG, False), (LONG + 1, True)])
def test_fallback_seal_takes_the_long_path_only_beyond_the_limit(
    monkeypatch: pytest.MonkeyPatch, size: int, long: bool
) -> None:
    used: list[int] = []
    real = _fallback.KeyEngine._encrypt_long

    def spy(self: Any, *args: Any) -> Any:
        used.append(len(args[1]))
        return real(self, *args)

    monkeypatch.setattr(_fallback.KeyEngine, "_encrypt_long", spy)
    plaintext = b'{"a":"' + b"x" * (size - 8) + b'"}'
    assert len(plaintext) == size
    engine = _fallback.KeyEngine(KEY)
    body, ts, nonce, sig = engine.seal(0, AGENT, plaintext, TS, NONCE, IV)
    status, opened = engine.open(0, AGENT, (ts + nonce + sig).encode(), len(ts), 32, body)
    assert status == OPEN_OK and opened == plaintext
    assert used == ([size] if long else [])


@pytest.mark.parametrize("engine", _engines(), ids=lambda e: e.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("digits", [1, 15, 16])
def test_engines_take_timestamps_of_one_to_sixteen_digits(engine: ModuleType, digits: int) -> None:
    ts_in = b"9" * digits
    body, ts, nonce, sig = engine.KeyEngine(KEY).seal(0, AGENT, b'{"a":1}', ts_in, NONCE, IV)
    assert ts.encode() == ts_in
    status, opened = engine.KeyEngine(KEY).open(
        0, AGENT, (ts + nonce + sig).encode(), digits, 32, body
    )
    assert (status, opened) == (OPEN_OK, b'{"a":1}')


@pytest.mark.parametrize("engine", _engines(), ids=lambda e: e.__name__.rsplit(".", 1)[-1])
def test_engines_refuse_a_seventeen_digit_timestamp(engine: ModuleType) -> None:
    body, _ts, nonce, sig = engine.KeyEngine(KEY).seal(0, AGENT, b'{"a":1}', TS, NONCE, IV)
    headers = (b"1" * 17) + (nonce + sig).encode()
    status, opened = engine.KeyEngine(KEY).open(0, AGENT, headers, 17, 32, body)
    assert (status, opened) == (OPEN_BAD_TIMESTAMP, None)


@pytest.mark.parametrize("scheme", [0, 1])
def test_fallback_open_checks_plain_arguments_without_the_slow_path(
    monkeypatch: pytest.MonkeyPatch, scheme: int
) -> None:
    engine = _fallback.KeyEngine(KEY)
    body, ts, nonce, sig = engine.seal(scheme, AGENT, b'{"a":1}', TS, NONCE, IV)

    def slow(*args: Any) -> Any:
        raise AssertionError("open_args called for exact arguments")

    monkeypatch.setattr(_fallback, "open_args", slow)
    status, opened = engine.open(scheme, AGENT, (ts + nonce + sig).encode(), len(ts), 32, body)
    assert (status, opened) == (OPEN_OK, b'{"a":1}')


def test_the_default_retry_budget_allows_twenty_retries() -> None:
    from vpseal._client_core import RetryBudget

    budget = RetryBudget()
    assert sum(budget.spend() for _ in range(30)) == 20
    assert repr(budget) == "RetryBudget(0/100)"


@pytest.mark.parametrize("scheme", [0, 1])
def test_fallback_seal_checks_plain_arguments_without_the_slow_path(
    monkeypatch: pytest.MonkeyPatch, scheme: int
) -> None:
    engine = _fallback.KeyEngine(KEY)

    def slow(*args: Any) -> Any:
        raise AssertionError("seal_args called for exact arguments")

    monkeypatch.setattr(_fallback, "seal_args", slow)
    _body, ts, nonce, _sig = engine.seal(scheme, AGENT, b'{"a":1}')
    assert len(nonce) == 32 and ts.isdigit()
    with pytest.raises(AssertionError, match="seal_args"):
        engine.seal(2, AGENT, b'{"a":1}')  # an unknown scheme goes to the checks


@pytest.mark.parametrize("engine", _engines(), ids=lambda e: e.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize(
    ("body", "framed"),
    [(b'{"cipherText":"}', False), (b'{"cipherText":', False), (b'{"cipherText":""}', True)],
)
def test_a_body_shorter_than_its_frame_is_not_canonical(
    engine: ModuleType, body: bytes, framed: bool
) -> None:
    """16 bytes that start with the prefix and end with the suffix (sharing a quote) are not
    the frame; the 17 bytes of an empty frame are, and fail later (the signature)."""
    from vpseal._protocol import OPEN_BAD_SIGNATURE, OPEN_NOT_CANONICAL

    headers = TS + NONCE + b"0" * 64
    status, opened = engine.KeyEngine(KEY).open(0, AGENT, headers, len(TS), 32, body)
    assert (status, opened) == (OPEN_BAD_SIGNATURE if framed else OPEN_NOT_CANONICAL, None)


@pytest.mark.parametrize("scheme", [0, 1])
def test_fallback_seal_many_checks_plain_arguments_without_the_slow_path(
    monkeypatch: pytest.MonkeyPatch, scheme: int
) -> None:
    engine = _fallback.KeyEngine(KEY)

    def slow(*args: Any) -> Any:
        raise AssertionError("seal_many_args called for exact arguments")

    monkeypatch.setattr(_fallback, "seal_many_args", slow)
    sealed = engine.seal_many(scheme, AGENT, [b'{"a":1}', b'{"b":2}'])
    assert len(sealed) == 2
    for plaintext, (body, ts, nonce, sig) in zip([b'{"a":1}', b'{"b":2}'], sealed, strict=True):
        headers = (ts + nonce + sig).encode()
        assert engine.open(scheme, AGENT, headers, len(ts), 32, body) == (OPEN_OK, plaintext)
    for bad in [(2, AGENT), (scheme, "agent")]:
        with pytest.raises(AssertionError, match="seal_many_args"):
            engine.seal_many(bad[0], bad[1], [b"{}"])  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", _engines(), ids=lambda e: e.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_engines_open_the_shortest_wire_strings(engine: ModuleType, size: int) -> None:
    """1-3 bytes of ciphertext: a 44-character wire string, the minimum; 4 bytes: 48."""
    plaintext = b"7" * size
    body, ts, nonce, sig = engine.KeyEngine(KEY).seal(0, AGENT, plaintext, TS, NONCE, IV)
    assert len(body) == len(b'{"cipherText":""}') + (44 if size < 4 else 48)
    headers = (ts + nonce + sig).encode()
    assert engine.KeyEngine(KEY).open(0, AGENT, headers, len(ts), 32, body) == (OPEN_OK, plaintext)
