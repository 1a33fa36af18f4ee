"""The published AES-GCM test vectors: where they are and how they are read (pyca keeps its
loaders in tests/utils.py; here tests/conftest.py only turns them into fixtures and ids).

The vectors live in tests/data/ (copied from the shared vectors directory, see
tests/data/VECTORS.md) so that a clean clone of this repository is enough to run the suite.
Loading never degrades silently: a missing or unparsable file is an error, and test_vectors.py
asserts the exact number of selected cases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# -- vector files ----------------------------------------------------------------------------

DATA_DIR = Path(__file__).resolve().parent / "data"
WYCHEPROOF_FILE = DATA_DIR / "wycheproof_aes_gcm_test.json"
NIST_ENCRYPT_FILE = DATA_DIR / "nist" / "gcmEncryptExtIV256.rsp"
NIST_DECRYPT_FILE = DATA_DIR / "nist" / "gcmDecrypt256.rsp"
# Relative path in the shared vectors directory -> path under tests/data.
VECTOR_FILES = {
    "wycheproof_aes_gcm_test.json": "wycheproof_aes_gcm_test.json",
    "wycheproof-LICENSE": "wycheproof-LICENSE",
    "nist/gcmEncryptExtIV256.rsp": "nist/gcmEncryptExtIV256.rsp",
    "nist/gcmDecrypt256.rsp": "nist/gcmDecrypt256.rsp",
    "README.md": "VECTORS.md",
}


def require(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"test vector file missing: {path} (copy it from the shared vectors directory; "
            "see tests/data/VECTORS.md)"
        )
    return path


# -- Wycheproof --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AeadCase:
    """One AES-GCM known answer. fail: the tag must be rejected (then pt is None)."""

    source: str
    name: str
    key: bytes
    iv: bytes
    aad: bytes
    pt: bytes | None
    ct: bytes
    tag: bytes
    fail: bool
    flags: tuple[str, ...] = ()


def load_wycheproof(path: Path = WYCHEPROOF_FILE) -> tuple[int, list[AeadCase]]:
    """(total number of tests in the file, cases with keySize 256, ivSize 96, tagSize 128)."""
    doc = json.loads(require(path).read_text(encoding="utf-8"))
    total = 0
    cases = []
    for group in doc["testGroups"]:
        total += len(group["tests"])
        if (group["keySize"], group["ivSize"], group["tagSize"]) != (256, 96, 128):
            continue
        for test in group["tests"]:
            if test["result"] not in ("valid", "invalid"):
                raise ValueError(f"unexpected Wycheproof result {test['result']!r}")
            fail = test["result"] == "invalid"
            cases.append(
                AeadCase(
                    source="wycheproof",
                    name=f"tc{test['tcId']}-{test['result']}",
                    key=bytes.fromhex(test["key"]),
                    iv=bytes.fromhex(test["iv"]),
                    aad=bytes.fromhex(test["aad"]),
                    pt=None if fail else bytes.fromhex(test["msg"]),
                    ct=bytes.fromhex(test["ct"]),
                    tag=bytes.fromhex(test["tag"]),
                    fail=fail,
                    flags=tuple(test["flags"]),
                )
            )
    if total != doc["numberOfTests"]:
        raise ValueError(f"Wycheproof file: {total} tests, header says {doc['numberOfTests']}")
    return total, cases


# -- NIST CAVP .rsp ----------------------------------------------------------------------------

_RSP_FIELDS = ("Count", "Key", "IV", "PT", "AAD", "CT", "Tag")


@dataclass(frozen=True)
class RspRecord:
    """One record of a CAVP .rsp file: the section parameters (bits) and its fields."""

    params: tuple[tuple[str, int], ...]
    fields: tuple[tuple[str, str], ...]
    fail: bool

    def param(self, name: str) -> int:
        return dict(self.params)[name]

    def field(self, name: str) -> str:
        return dict(self.fields)[name]


def parse_rsp(text: str) -> list[RspRecord]:
    """Every record of a CAVP .rsp file. Strict: an unknown line is an error, not skipped."""
    params: dict[str, int] = {}
    records: list[RspRecord] = []
    fields: dict[str, str] | None = None
    fail = False

    def flush() -> None:
        nonlocal fields, fail
        if fields is not None:
            missing = {"Count", "Key", "IV", "AAD", "CT", "Tag"} - fields.keys()
            if missing:
                raise ValueError(f"rsp record {fields} lacks {sorted(missing)}")
            records.append(RspRecord(tuple(params.items()), tuple(fields.items()), fail))
        fields, fail = None, False

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("#"):
            continue
        elif line.startswith("[") and line.endswith("]"):
            flush()
            name, _, value = line[1:-1].partition("=")
            params[name.strip()] = int(value.strip())
        elif line == "FAIL":
            if fields is None:
                raise ValueError(f"line {lineno}: FAIL outside a record")
            fail = True
        elif "=" in line:
            name, _, value = line.partition("=")
            name, value = name.strip(), value.strip()
            if name not in _RSP_FIELDS:
                raise ValueError(f"line {lineno}: unknown field {name!r}")
            if name == "Count":
                flush()
                fields = {}
            if fields is None or name in fields:
                raise ValueError(f"line {lineno}: field {name!r} outside a record or repeated")
            fields[name] = value
        else:
            raise ValueError(f"line {lineno}: cannot parse {raw!r}")
    flush()
    return records


def load_rsp(path: Path) -> tuple[list[RspRecord], list[AeadCase]]:
    """(all records, the Keylen=256 IVlen=96 Taglen=128 ones as AeadCases)."""
    records = parse_rsp(require(path).read_text(encoding="ascii"))
    kind = "enc" if "Encrypt" in path.name else "dec"
    cases = []
    for rec in records:
        if (rec.param("Keylen"), rec.param("IVlen"), rec.param("Taglen")) != (256, 96, 128):
            continue
        fields = dict(rec.fields)
        pt = fields.get("PT")
        cases.append(
            AeadCase(
                source=f"nist-{kind}",
                name=(
                    f"pt{rec.param('PTlen')}-aad{rec.param('AADlen')}-c{fields['Count']}"
                    + ("-FAIL" if rec.fail else "")
                ),
                key=bytes.fromhex(fields["Key"]),
                iv=bytes.fromhex(fields["IV"]),
                aad=bytes.fromhex(fields["AAD"]),
                pt=None if pt is None else bytes.fromhex(pt),
                ct=bytes.fromhex(fields["CT"]),
                tag=bytes.fromhex(fields["Tag"]),
                fail=rec.fail,
                flags=tuple(f"{k}={v}" for k, v in rec.params),
            )
        )
    return records, cases


