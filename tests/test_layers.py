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

    if _fallback._raw_ecb is None:  # pragma: no cover - other pycryptodome builds
        pytest.skip("pycryptodome's raw ECB library is not importable here")
    key = bytes(range(32))
    encrypt = _fallback._make_ecb(key)
    assert not hasattr(encrypt, "__self__")  # not the bound AES.encrypt
    blocks = bytes(range(64))
    assert bytes(encrypt(blocks)) == AES.new(key, AES.MODE_ECB).encrypt(blocks)
    with pytest.raises(ValueError, match="whole number of blocks"):
        encrypt(b"x" * 15)
