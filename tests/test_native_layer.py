"""The native wrapper mirrors two C length formulas in Python (to save a call per request);
these tests pin them to the C functions so the two can never drift apart."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

native = pytest.importorskip("vpseal._native")


@given(st.integers(min_value=1, max_value=1 << 24))
def test_body_len_matches_c(n: int) -> None:
    assert native._body_len(n) == native.lib.vp_body_len(n)


@given(st.binary(max_size=300))
def test_plaintext_len_matches_c_on_any_bytes(body: bytes) -> None:
    assert native._plaintext_len(body) == native.lib.vp_plaintext_len(body, len(body))


@pytest.mark.parametrize("pad", ["", "=", "==", "A=", "=A", "==="])
@pytest.mark.parametrize("length", [0, 1, 4, 40, 44, 45, 48, 100])
def test_plaintext_len_matches_c_on_body_shapes(pad: str, length: int) -> None:
    body = ('{"cipherText":"' + "A" * length + pad + '"}').encode()
    assert native._plaintext_len(body) == native.lib.vp_plaintext_len(body, len(body))
