"""The public AesGcm API: argument checking, round trips, agreement with `cryptography`,
tamper detection and sharing one key object between threads."""

from __future__ import annotations

import random
import threading

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import assume, given
from hypothesis import strategies as st

import vpseal
from vpseal import AesGcm, InvalidTag

KEY = bytes(range(32))
IV = bytes(range(100, 112))

keys = st.binary(min_size=32, max_size=32)
ivs = st.binary(min_size=12, max_size=12)


def _sized_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


# Small inputs come straight from Hypothesis; larger ones (up to ~6000 bytes, crossing the
# fallback engine's short/long-message switch) from a seeded PRNG so that sizes still shrink.
payloads = st.one_of(
    st.binary(max_size=300),
    st.builds(_sized_bytes, st.integers(0, 6000), st.integers(0, 2**32 - 1)),
)
aads = st.one_of(st.none(), payloads)


# -- argument checking -----------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 16, 24, 31, 33, 64])
def test_key_wrong_length(size: int) -> None:
    with pytest.raises(ValueError, match="key"):
        AesGcm(bytes(size))


@pytest.mark.parametrize("size", [0, 1, 8, 11, 13, 16, 32])
@pytest.mark.parametrize("op", ["encrypt", "decrypt"])
def test_iv_wrong_length(op: str, size: int) -> None:
    gcm = AesGcm(KEY)
    with pytest.raises(ValueError, match="iv"):
        getattr(gcm, op)(bytes(size), bytes(32))
    with pytest.raises(ValueError, match="iv"):
        getattr(gcm, op)(bytearray(size), bytes(32), b"aad")


BAD_TYPES = ["0" * 32, 32, None, [0] * 32, 1.5]


@pytest.mark.parametrize("value", BAD_TYPES, ids=repr)
def test_key_wrong_type(value: object) -> None:
    with pytest.raises(TypeError, match="key"):
        AesGcm(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", BAD_TYPES, ids=repr)
@pytest.mark.parametrize("op", ["encrypt", "decrypt"])
def test_iv_wrong_type(op: str, value: object) -> None:
    with pytest.raises(TypeError, match="iv"):
        getattr(AesGcm(KEY), op)(value, bytes(32))


@pytest.mark.parametrize("value", BAD_TYPES, ids=repr)
@pytest.mark.parametrize(("op", "name"), [("encrypt", "plaintext"), ("decrypt", "data")])
def test_payload_wrong_type(op: str, name: str, value: object) -> None:
    with pytest.raises(TypeError, match=name):
        getattr(AesGcm(KEY), op)(IV, value)


@pytest.mark.parametrize("value", [v for v in BAD_TYPES if v is not None], ids=repr)
@pytest.mark.parametrize("op", ["encrypt", "decrypt"])
def test_aad_wrong_type(op: str, value: object) -> None:
    with pytest.raises(TypeError, match="aad"):
        getattr(AesGcm(KEY), op)(IV, bytes(32), value)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_buffer_types_accepted(kind: type) -> None:
    pt, aad = b"attack at dawn" * 5, b"header"
    reference = AesGcm(KEY)
    expected = reference.encrypt(IV, pt, aad)

    gcm = AesGcm(kind(bytearray(KEY)))
    args = [kind(bytearray(x)) for x in (IV, pt, aad)]
    out = gcm.encrypt(*args)
    assert type(out) is bytes
    assert out == expected
    assert gcm.decrypt(kind(bytearray(IV)), kind(bytearray(expected)), kind(bytearray(aad))) == pt
    assert reference.decrypt(IV, out, aad) == pt


def test_inputs_not_modified() -> None:
    key, iv, pt, aad = (bytearray(x) for x in (KEY, IV, b"p" * 40, b"a" * 7))
    snapshot = [bytes(x) for x in (key, iv, pt, aad)]
    gcm = AesGcm(key)
    data = bytearray(gcm.encrypt(iv, pt, aad))
    data_snapshot = bytes(data)
    gcm.decrypt(iv, data, aad)
    assert [bytes(x) for x in (key, iv, pt, aad)] == snapshot
    assert bytes(data) == data_snapshot


def test_key_copied_at_construction() -> None:
    """Changing the caller's buffer afterwards does not change the key in use."""
    key = bytearray(KEY)
    gcm = AesGcm(key)
    key[:] = bytes(32)
    assert gcm.encrypt(IV, b"x" * 20) == AESGCM(KEY).encrypt(IV, b"x" * 20, None)


@pytest.mark.parametrize("size", range(16))
def test_data_shorter_than_tag(size: int) -> None:
    with pytest.raises(InvalidTag):
        AesGcm(KEY).decrypt(IV, bytes(size))
    with pytest.raises(InvalidTag):
        AesGcm(KEY).decrypt(IV, bytes(size), b"aad")


def test_invalid_tag_is_vpseal_error() -> None:
    assert issubclass(InvalidTag, vpseal.VPSealError)


@pytest.mark.parametrize(
    "key",
    [KEY, bytes(32), b"\xff" * 32, bytes.fromhex("ab" * 32)],
    ids=["counting", "zeros", "ones", "ab"],
)
def test_repr_hides_key(key: bytes) -> None:
    gcm = AesGcm(key)
    for text in (repr(gcm), str(gcm), f"{gcm!r}", format(gcm)):
        assert key.hex() not in text.lower()
        assert repr(key) not in text
        assert key.hex()[:16] not in text.lower()
    assert "AesGcm" in repr(gcm)


def test_no_instance_dict() -> None:
    """The key is not exposed through a __dict__ that vars()/pickling/logging would show."""
    gcm = AesGcm(KEY)
    with pytest.raises(TypeError):
        vars(gcm)


# -- round trips -----------------------------------------------------------------------------


@given(key=keys, iv=ivs, pt=payloads, aad=aads)
def test_round_trip(key: bytes, iv: bytes, pt: bytes, aad: bytes | None) -> None:
    gcm = AesGcm(key)
    data = gcm.encrypt(iv, pt, aad)
    assert type(data) is bytes
    assert len(data) == len(pt) + 16
    assert gcm.decrypt(iv, data, aad) == pt
    if not aad:
        # None and b"" are the same (empty) AAD
        assert gcm.encrypt(iv, pt, b"" if aad is None else None) == data


@given(key=keys, iv=ivs, pt=payloads, aad=aads)
def test_matches_cryptography(key: bytes, iv: bytes, pt: bytes, aad: bytes | None) -> None:
    gcm = AesGcm(key)
    reference = AESGCM(key)
    expected = reference.encrypt(iv, pt, aad)
    assert gcm.encrypt(iv, pt, aad) == expected
    assert gcm.decrypt(iv, expected, aad) == pt
    assert reference.decrypt(iv, gcm.encrypt(iv, pt, aad), aad) == pt


# Deterministic sizes around block boundaries, plausible short/long-message switches of the
# fallback engine (2 KiB, 4 KiB, 5 KiB, 8 KiB), and 1 MiB.
SIZES = [0, 1, 2, 15, 16, 17, 31, 32, 33, 255, 2047, 2048, 2049, 2064, 4095, 4096, 4097]
SIZES += [5119, 5120, 5121, 8191, 8192, 8193, 65537, 1 << 20]


SIZE_CASES = [
    (size, aad_size)
    for size in SIZES
    for aad_size in ([0, 13, 2049, 5121, 8193] if size < 65537 else [0, 8193])
]


@pytest.mark.parametrize(("size", "aad_size"), SIZE_CASES)
def test_sizes_match_cryptography(size: int, aad_size: int) -> None:
    pt = _sized_bytes(size, size)
    aad = _sized_bytes(aad_size, aad_size + 1) if aad_size else None
    iv = _sized_bytes(12, size + 7)
    gcm = AesGcm(KEY)
    expected = AESGCM(KEY).encrypt(iv, pt, aad)
    assert gcm.encrypt(iv, pt, aad) == expected
    assert gcm.decrypt(iv, expected, aad) == pt
    tampered = bytearray(expected)
    tampered[size // 2] ^= 0x80
    with pytest.raises(InvalidTag):
        gcm.decrypt(iv, bytes(tampered), aad)


def test_small_plaintexts_do_not_corrupt_shared_objects() -> None:
    """0- and 1-byte results are correct, and CPython's cached 1-byte objects stay intact."""
    gcm = AesGcm(KEY)
    for i in range(256):
        pt = bytes([i])
        assert gcm.decrypt(IV, gcm.encrypt(IV, pt), b"") == pt
    assert gcm.decrypt(IV, gcm.encrypt(IV, b"")) == b""
    assert [bytes([i])[0] for i in range(256)] == list(range(256))
    assert [len(bytes([i])) for i in range(256)] == [1] * 256
    assert len(bytes(0)) == 0


def test_results_are_independent_objects() -> None:
    """A later call never writes into a result already handed out."""
    gcm = AesGcm(KEY)
    first = gcm.encrypt(IV, b"a" * 40)
    saved = bytes(bytearray(first))
    pt_first = gcm.decrypt(IV, first)
    second = gcm.encrypt(IV, b"b" * 40)
    gcm.decrypt(IV, second)
    assert first == saved
    assert pt_first == b"a" * 40
    assert first != second


# -- tampering -----------------------------------------------------------------------------


@given(key=keys, iv=ivs, pt=payloads, aad=payloads, data=st.data())
def test_any_single_bit_flip_is_rejected(
    key: bytes, iv: bytes, pt: bytes, aad: bytes, data: st.DataObject
) -> None:
    gcm = AesGcm(key)
    sealed = gcm.encrypt(iv, pt, aad)
    ct, tag = sealed[:-16], sealed[-16:]
    parts = {"iv": iv, "tag": tag}
    if ct:
        parts["ct"] = ct
    if aad:
        parts["aad"] = aad
    which = data.draw(st.sampled_from(sorted(parts)), label="part")
    bit = data.draw(st.integers(0, len(parts[which]) * 8 - 1), label="bit")
    flipped = bytearray(parts[which])
    flipped[bit // 8] ^= 1 << (bit % 8)
    parts[which] = bytes(flipped)
    with pytest.raises(InvalidTag):
        gcm.decrypt(parts["iv"], parts.get("ct", b"") + parts["tag"], parts.get("aad", b"") or None)


@given(key=keys, other=keys, iv=ivs, pt=payloads)
def test_wrong_key_rejected(key: bytes, other: bytes, iv: bytes, pt: bytes) -> None:
    assume(key != other)
    with pytest.raises(InvalidTag):
        AesGcm(other).decrypt(iv, AesGcm(key).encrypt(iv, pt))


@given(iv=ivs, pt=payloads, aad=payloads, cut=st.integers(1, 64))
def test_truncation_and_aad_mismatch_rejected(iv: bytes, pt: bytes, aad: bytes, cut: int) -> None:
    gcm = AesGcm(KEY)
    sealed = gcm.encrypt(iv, pt, aad)
    with pytest.raises(InvalidTag):
        gcm.decrypt(iv, sealed[:-cut], aad)
    with pytest.raises(InvalidTag):
        gcm.decrypt(iv, sealed + b"\x00" * cut, aad)
    with pytest.raises(InvalidTag):
        gcm.decrypt(iv, sealed, aad + b"\x00")
    if aad:
        with pytest.raises(InvalidTag):
            gcm.decrypt(iv, sealed)  # AAD dropped
    else:
        with pytest.raises(InvalidTag):
            gcm.decrypt(iv, sealed, b"x")  # AAD added


# -- threads -----------------------------------------------------------------------------------

THREADS = 8
OPS_PER_THREAD = 500


def _jobs(thread: int) -> list[tuple[bytes, bytes, bytes | None]]:
    rng = random.Random(thread)
    jobs = []
    for i in range(OPS_PER_THREAD):
        iv = thread.to_bytes(4, "big") + i.to_bytes(8, "big")
        size = rng.choice([0, 1, 17, 100, 1000, 2100, 5000, 9000]) + rng.randrange(16)
        aad = rng.randbytes(rng.randrange(40)) if i % 3 else None
        jobs.append((iv, rng.randbytes(size), aad))
    return jobs


def test_shared_between_threads() -> None:
    gcm = AesGcm(KEY)
    all_jobs = [_jobs(t) for t in range(THREADS)]
    expected = [[gcm.encrypt(iv, pt, aad) for iv, pt, aad in jobs] for jobs in all_jobs]

    results: list[list[bytes] | None] = [None] * THREADS
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def work(t: int) -> None:
        try:
            barrier.wait()
            out = []
            for iv, pt, aad in all_jobs[t]:
                sealed = gcm.encrypt(iv, pt, aad)
                if gcm.decrypt(iv, sealed, aad) != pt:
                    raise AssertionError(f"thread {t}: round trip failed")
                out.append(sealed)
            results[t] = out
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads)
    assert errors == []
    assert results == expected
    # and the single-threaded results are the standard ones
    reference = AESGCM(KEY)
    for jobs, sealed in zip(all_jobs, expected, strict=True):
        for (iv, pt, aad), out in list(zip(jobs, sealed, strict=True))[::50]:
            assert out == reference.encrypt(iv, pt, aad)
