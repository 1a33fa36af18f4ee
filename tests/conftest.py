"""Shared test setup: Hypothesis profiles, engine and scheme parameters, and the published
AES-GCM test vectors as fixtures and test ids (their files and loaders: _vectors.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _envelope_helpers import BACKENDS, SCHEMES, require_backend
from _vectors import (
    DATA_DIR,
    NIST_DECRYPT_FILE,
    NIST_ENCRYPT_FILE,
    VECTOR_FILES,
    WYCHEPROOF_FILE,
    AeadCase,
    RspRecord,
    load_rsp,
    load_wycheproof,
    require,
)
from hypothesis import HealthCheck, settings

# -- Hypothesis ----------------------------------------------------------------------------

settings.register_profile(
    "ci",
    deadline=None,  # CI machines are noisy; timing is not what these tests check
    max_examples=300,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", parent=settings.get_profile("ci"), max_examples=25)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# -- vector fixtures (loaders: _vectors.py) ------------------------------------------------

@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """tests/data: the in-repository copy of the published vectors."""
    require(WYCHEPROOF_FILE)
    return DATA_DIR


@pytest.fixture(scope="session")
def shared_vectors_dir() -> Path:
    """The original shared vectors directory, when this checkout sits next to it (else skip)."""
    for candidate in (
        os.environ.get("VPSEAL_SHARED_VECTORS"),
        Path(__file__).resolve().parents[2] / "shared" / "vectors",
    ):
        if candidate and Path(candidate, "README.md").is_file():
            return Path(candidate)
    pytest.skip("shared vectors directory not present (clean clone): tests/data is used")


# -- parametrization ---------------------------------------------------------------------------

_CACHE: dict[str, list[AeadCase]] = {}


def _cases(which: str) -> list[AeadCase]:
    if which not in _CACHE:
        if which == "wycheproof":
            _CACHE[which] = load_wycheproof()[1]
        elif which == "nist_encrypt":
            _CACHE[which] = load_rsp(NIST_ENCRYPT_FILE)[1]
        else:
            _CACHE[which] = load_rsp(NIST_DECRYPT_FILE)[1]
    return _CACHE[which]


_PARAMETRIZED = {
    "wycheproof_case": "wycheproof",
    "nist_encrypt_case": "nist_encrypt",
    "nist_decrypt_case": "nist_decrypt",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test id per vector for tests taking wycheproof_case / nist_*_case."""
    if "vector_file" in metafunc.fixturenames:
        pairs = sorted(VECTOR_FILES.items())
        metafunc.parametrize("vector_file", pairs, ids=[shared for shared, _ in pairs])
    for argname, which in _PARAMETRIZED.items():
        if argname in metafunc.fixturenames:
            cases = _cases(which)
            metafunc.parametrize(argname, cases, ids=[c.name for c in cases])


@pytest.fixture(scope="session")
def wycheproof_data() -> tuple[int, list[AeadCase]]:
    """(total tests in the Wycheproof file, the selected 256/96/128 cases)."""
    return load_wycheproof()


@pytest.fixture(scope="session")
def nist_encrypt_data() -> tuple[list[RspRecord], list[AeadCase]]:
    """(every record of gcmEncryptExtIV256.rsp, the selected IVlen=96 Taglen=128 cases)."""
    return load_rsp(NIST_ENCRYPT_FILE)


@pytest.fixture(scope="session")
def nist_decrypt_data() -> tuple[list[RspRecord], list[AeadCase]]:
    """(every record of gcmDecrypt256.rsp, the selected IVlen=96 Taglen=128 cases)."""
    return load_rsp(NIST_DECRYPT_FILE)


# --- envelope fixtures: every backend this machine has, and both signature schemes ---


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(require_backend(request.param))


@pytest.fixture(params=SCHEMES)
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)
