"""Published AES-256-GCM known answers (Wycheproof, NIST CAVP) through the public AesGcm API.

The whole suite runs once per backend, so these cover whichever engine is active.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import vpseal

if TYPE_CHECKING:
    from _vectors import AeadCase, RspRecord


def _check_valid(case: AeadCase) -> None:
    assert case.pt is not None
    gcm = vpseal.AesGcm(case.key)
    assert gcm.encrypt(case.iv, case.pt, case.aad) == case.ct + case.tag
    assert gcm.decrypt(case.iv, case.ct + case.tag, case.aad) == case.pt
    if not case.aad:  # no AAD and empty AAD are the same thing
        assert gcm.encrypt(case.iv, case.pt) == case.ct + case.tag
        assert gcm.decrypt(case.iv, case.ct + case.tag) == case.pt


def _check_invalid(case: AeadCase) -> None:
    gcm = vpseal.AesGcm(case.key)
    with pytest.raises(vpseal.InvalidTag):
        gcm.decrypt(case.iv, case.ct + case.tag, case.aad)


# -- one test per vector -------------------------------------------------------------------


def test_wycheproof(wycheproof_case: AeadCase) -> None:
    if wycheproof_case.fail:
        _check_invalid(wycheproof_case)
    else:
        _check_valid(wycheproof_case)


def test_nist_encrypt(nist_encrypt_case: AeadCase) -> None:
    assert not nist_encrypt_case.fail
    _check_valid(nist_encrypt_case)


def test_nist_decrypt(nist_decrypt_case: AeadCase) -> None:
    if nist_decrypt_case.fail:
        _check_invalid(nist_decrypt_case)
    else:
        _check_valid(nist_decrypt_case)


# -- the selections are complete (a parser regression must not silently drop vectors) -------


def _assert_shapes(cases: list[AeadCase]) -> None:
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "test ids must be unique"
    for c in cases:
        assert (len(c.key), len(c.iv), len(c.tag)) == (32, 12, 16), c.name
        assert c.fail == (c.pt is None), c.name
        if c.pt is not None:
            assert len(c.pt) == len(c.ct), c.name


def test_wycheproof_counts(wycheproof_data: tuple[int, list[AeadCase]]) -> None:
    total, cases = wycheproof_data
    assert total == 316
    assert len(cases) == 66
    assert sum(not c.fail for c in cases) == 39
    invalid = [c for c in cases if c.fail]
    assert len(invalid) == 27
    assert all(c.flags == ("ModifiedTag",) for c in invalid)
    _assert_shapes(cases)


def _assert_nist_lengths(cases: list[AeadCase]) -> None:
    for c in cases:
        params = dict(f.split("=") for f in c.flags)
        assert len(c.ct) * 8 == int(params["PTlen"]), c.name
        assert len(c.aad) * 8 == int(params["AADlen"]), c.name


def test_nist_encrypt_counts(nist_encrypt_data: tuple[list[RspRecord], list[AeadCase]]) -> None:
    records, cases = nist_encrypt_data
    assert len(records) == 7875
    assert not any(r.fail for r in records)
    assert len(cases) == 375
    _assert_shapes(cases)
    _assert_nist_lengths(cases)
    # 5 PTlen x 5 AADlen sections of 15 records each
    assert {c.name.rsplit("-", 1)[0] for c in cases} == {
        f"pt{p}-aad{a}" for p in (0, 128, 104, 256, 408) for a in (0, 128, 160, 384, 720)
    }


def test_nist_decrypt_counts(nist_decrypt_data: tuple[list[RspRecord], list[AeadCase]]) -> None:
    records, cases = nist_decrypt_data
    assert len(records) == 7875
    assert len(cases) == 375
    assert sum(c.fail for c in cases) == 191
    assert sum(not c.fail for c in cases) == 184
    _assert_shapes(cases)
    _assert_nist_lengths(cases)


# -- the in-repository copies are the published files ------------------------------------------

_SHA256 = {
    "nist/gcmEncryptExtIV256.rsp": (
        "4448b4998c3f58cd9f5542ddf7c573189a721ff3d3ac24cd5177bb4910a787f8"
    ),
    "nist/gcmDecrypt256.rsp": "ed318735a517d5a85c82d2846c23dcf56e57a352fb0f0a163d9e7617a7bd12ad",
}


@pytest.mark.parametrize("name", sorted(_SHA256))
def test_nist_file_digest(vectors_dir: Path, name: str) -> None:
    """The digests published in VECTORS.md (also guards against CRLF conversion by git)."""
    digest = hashlib.sha256((vectors_dir / name).read_bytes()).hexdigest()
    assert digest == _SHA256[name]
    assert digest in (vectors_dir / "VECTORS.md").read_text(encoding="utf-8")


def test_copy_matches_shared(
    vectors_dir: Path, shared_vectors_dir: Path, vector_file: tuple[str, str]
) -> None:
    """Where the shared vectors directory exists, tests/data holds exactly its bytes."""
    shared_name, local_name = vector_file
    shared = (shared_vectors_dir / shared_name).read_bytes()
    assert (vectors_dir / local_name).read_bytes() == shared
