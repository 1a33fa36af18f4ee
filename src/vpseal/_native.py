"""The native engine: a thin layer over the compiled C module (csrc/vpseal.c).

Each operation crosses into C once. Every buffer handed to C is an exact ``bytes`` object
(anything else is copied once, see _args.as_bytes, or refused) with its true length beside it,
and C checks each length against the others: a ``bytes`` subclass whose ``__len__`` lies never
reaches C, and a length that does not add up is refused rather than read past.

Where C writes its output
-------------------------
The four hot operations (encrypt, decrypt, seal, open) let C write their result straight into a
new ``bytes`` object of its final size (``_NUL * n``, n >= 2), the way a C extension fills
``PyBytes_FromStringAndSize(NULL, n)``: nobody else holds a reference yet, and CPython's shared
empty and one-byte objects are never involved. cffi does not promise this works ("never modify
byte strings"): it holds on CPython, which hands C a pointer to the object's own storage, and
not on PyPy, which hands C a copy (the output stays zeros). So this engine loads only on
CPython, and only after ``_self_test`` has seen known answers come back through each of those
outputs (and seen that ``_NUL * n`` makes an object referenced from nowhere else); otherwise
importing it raises ImportError saying why, and vpseal uses its fallback engine.

Measured with callgrind on CPython 3.11 (instructions per 64-byte encrypt through the same C
call): C writing into a new bytes object 7.5k; ffi.new(char[]) + ffi.unpack 9.9k;
ffi.new + ffi.buffer()[:] 10.5k; bytearray + ffi.from_buffer + bytes() 10.6k; pyca/cryptography's
AESGCM.encrypt 6.3k. cffi's own buffers would cost about a third more per call and miss the
1.25x target against pyca at 64 bytes. Everything that is not a hot single call (random bytes,
SHA-256, seal_many, open_batch) uses cffi's own buffers (ffi.new) instead.

C failures become exceptions here (ValueError for an argument, RuntimeError for OpenSSL);
statuses pass through. The exception types are those the fallback raises for the same input
(see _backend).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from vpseal._args import (
    GCM_MAX_BYTES,
    aead_args,
    as_bytes,
    key_bytes,
    open_args,
    random_count,
    seal_args,
    seal_many_args,
    too_long,
)
from vpseal._protocol import (
    OPEN_BAD_NONCE,
    OPEN_BAD_SIGNATURE,
    OPEN_BAD_TAG,
    OPEN_BAD_TIMESTAMP,
    OPEN_BAD_WIRE,
    OPEN_NOT_CANONICAL,
    OPEN_OK,
    SCHEME_PIPE,
    SCHEME_TRANSFER,
)
from vpseal.errors import InvalidTag

if sys.implementation.name != "cpython":  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "vpseal's native engine runs only on CPython: it has C write its outputs into fresh"
        f" bytes objects, which {sys.implementation.name} copies before C sees them"
    )

try:
    from vpseal._vpseal_native import ffi, lib  # type: ignore[import-not-found,unused-ignore]
except ImportError as exc:  # pragma: no cover - exercised only where the build failed
    note = Path(__file__).with_name("_native_unavailable.txt")
    why = note.read_text().strip() if note.exists() else f"{exc}"
    raise ImportError(f"vpseal's native engine is not available: {why}") from exc

if lib.vp_init() != lib.VP_OK:  # pragma: no cover - a broken libcrypto
    raise ImportError("vpseal's native engine could not initialise OpenSSL (AES-256-GCM/SHA256)")

NAME = "native"
_TAG = 16
_META = lib.VP_META_LEN  # "<nonce hex> <signature hex> <timestamp>", space-padded: .split()
_NULL = ffi.NULL
_OK = lib.VP_OK
_ERR_ARG = lib.VP_ERR_ARG
_BAD_TAG = lib.VP_BAD_TAG
_CHARS = ffi.typeof("char[]")
# Outputs of the hot calls are made as _NUL * n (n >= 2 always): a new, zeroed bytes object, and
# half the cost of bytes(n), which looks for __bytes__ on the int first.
_NUL = b"\x00"
_new = ffi.new
_unpack = ffi.unpack
_buffer = ffi.buffer
# The hot calls write into fresh bytes objects (see the module docstring and _self_test).
_encrypt = lib.vp_encrypt
_decrypt = lib.vp_decrypt
_encrypt_noaad = lib.vp_encrypt_noaad
_decrypt_noaad = lib.vp_decrypt_noaad
_seal = lib.vp_seal
_seal_fixed = lib.vp_seal_fixed
_seal_many = lib.vp_seal_many
_open = lib.vp_open
_open_many = lib.vp_open_many
# cffi's own conversion errors for an int or pointer argument: normalised by _args.
_CONVERSION = (TypeError, OverflowError)

# One copy of each format fact is enough only if C agrees with it.
if (lib.VP_SCHEME_TRANSFER, lib.VP_SCHEME_PIPE) != (SCHEME_TRANSFER, SCHEME_PIPE) or (
    lib.VP_OK,
    lib.VP_NOT_CANONICAL,
    lib.VP_BAD_SIGNATURE,
    lib.VP_BAD_WIRE,
    lib.VP_BAD_TAG,
    lib.VP_BAD_TIMESTAMP,
    lib.VP_BAD_NONCE,
) != (
    OPEN_OK,
    OPEN_NOT_CANONICAL,
    OPEN_BAD_SIGNATURE,
    OPEN_BAD_WIRE,
    OPEN_BAD_TAG,
    OPEN_BAD_TIMESTAMP,
    OPEN_BAD_NONCE,
):  # pragma: no cover - a stale build
    raise ImportError("vpseal's native engine was built from other sources (constants differ)")


def _body_len(n: int) -> int:
    """What C's vp_body_len computes, without a call: prefix, iv, tag, base64(n), suffix."""
    return 57 + (n + 2) // 3 * 4


def _plaintext_len(body: bytes) -> int:
    """What C's vp_plaintext_len computes, without a call: the ciphertext length of a body."""
    n = len(body) - 57  # prefix 15 + iv 16 + tag 24 + suffix 2
    if n < 4 or n % 4:
        return 0
    if body[-3] != 61:  # '='
        return n // 4 * 3
    return n // 4 * 3 - (2 if body[-4] == 61 else 1)


def _check(rc: int) -> None:
    """Raise for C failures that validation above should have made impossible."""
    if rc == _ERR_ARG:
        raise ValueError("vpseal native engine rejected an argument (length or pointer)")
    if rc != _OK:
        raise RuntimeError("OpenSSL failed inside vpseal's native engine")


def openssl_version() -> str | None:
    return str(ffi.string(lib.vp_openssl_version()).decode("ascii", "replace"))


def random_bytes(n: int) -> bytes:
    n = random_count(n)
    out = _new(_CHARS, n or 1)
    _check(lib.vp_random(out, n))
    return _unpack(out, n)  # type: ignore[no-any-return]


def sha256_hex(data: bytes) -> str:
    if type(data) is not bytes:
        data = as_bytes("data", data)
    out = _new(_CHARS, 64)
    _check(lib.vp_sha256_hex(data, len(data), out, 64))
    return _unpack(out, 64).decode("ascii")  # type: ignore[no-any-return]


class KeyEngine:
    """A C key object: keyed OpenSSL context made once, per-call workers pooled in C."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if type(key) is not bytes or len(key) != 32:
            key = key_bytes(key)
        handle = lib.vp_key_new(key, len(key))
        if handle == _NULL:
            raise RuntimeError("OpenSSL could not set up an AES-256-GCM key")
        self._key: Any = ffi.gc(handle, lib.vp_key_free)

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes | None = None) -> bytes:
        """ciphertext || 16-byte tag (the AesGcm.encrypt contract, checks included)."""
        if aad is None and type(plaintext) is bytes and type(iv) is bytes:
            n = len(plaintext) + _TAG
            out = _NUL * n  # >= 16 bytes: a fresh object (module docstring)
            if _encrypt_noaad(self._key, iv, len(iv), plaintext, n - _TAG, out, n) == _OK:
                return out  # C checked the IV's length (12) and the rest
        return self._encrypt(iv, plaintext, aad)

    def _encrypt(self, iv: object, plaintext: object, aad: object) -> bytes:
        """encrypt() of anything else: converted, or TypeError/ValueError naming why not."""
        iv, plaintext, aad = aead_args(iv, plaintext, aad, "plaintext")
        n = len(plaintext) + _TAG
        out = _NUL * n
        rc = _encrypt(self._key, iv, 12, aad, len(aad), plaintext, n - _TAG, out, n)
        if rc != _OK:
            if n - _TAG > GCM_MAX_BYTES:
                raise too_long("plaintext")
            _check(rc)
        return out

    def decrypt(self, iv: bytes, data: bytes, aad: bytes | None = None) -> bytes:
        """Plaintext of ciphertext || tag; InvalidTag on any authentication failure."""
        if aad is None and type(data) is bytes and type(iv) is bytes:
            n = len(data) - _TAG
            if n >= 2:
                out = _NUL * n  # a fresh object (module docstring)
                rc = _decrypt_noaad(self._key, iv, len(iv), data, n + _TAG, out, n)
                if rc == _OK:
                    return out
                if rc == _BAD_TAG:
                    raise InvalidTag("AES-GCM authentication failed")
        return self._decrypt(iv, data, aad)

    def _decrypt(self, iv: object, data: object, aad: object) -> bytes:
        """decrypt() of anything else, and of results under 2 bytes."""
        iv, data, aad = aead_args(iv, data, aad, "data")
        n = len(data) - _TAG
        if n >= 2:
            out = _NUL * n
            rc = _decrypt(self._key, iv, 12, aad, len(aad), data, n + _TAG, out, n)
            if rc == _OK:
                return out
        elif n >= 0:  # CPython shares its 0- and 1-byte objects: a cffi buffer for those
            small = _new(_CHARS, 1)
            rc = _decrypt(self._key, iv, 12, aad, len(aad), data, n + _TAG, small, n)
            if rc == _OK:
                return _unpack(small, n)  # type: ignore[no-any-return]
        else:
            rc = _BAD_TAG
        if rc != _BAD_TAG:
            if n > GCM_MAX_BYTES:
                raise too_long("data")
            _check(rc)
        raise InvalidTag("AES-GCM authentication failed")

    def seal(
        self,
        scheme: int,
        agent_id: bytes,
        plaintext: bytes,
        timestamp: bytes | None = None,
        nonce_hex: bytes | None = None,
        iv: bytes | None = None,
    ) -> tuple[bytes, str, str, str]:
        if type(plaintext) is not bytes or type(agent_id) is not bytes:
            scheme, agent_id, plaintext, timestamp, nonce_hex, iv = seal_args(
                scheme, agent_id, plaintext, timestamp, nonce_hex, iv
            )
        n = len(plaintext)
        size = 57 + (n + 2) // 3 * 4  # _body_len(n), inlined
        body = _NUL * size  # >= 61 bytes: a fresh object (module docstring)
        meta = _NUL * _META
        try:
            if timestamp is None and nonce_hex is None and iv is None:
                rc = _seal(
                    self._key, scheme, agent_id, len(agent_id), plaintext, n, body, size,
                    meta, _META,
                )  # fmt: skip
            else:
                rc = self._seal_fixed(
                    scheme, agent_id, plaintext, timestamp, nonce_hex, iv, body, meta
                )
        except _CONVERSION:
            rc = _ERR_ARG
        if rc != _OK:
            if rc == _ERR_ARG:
                seal_args(scheme, agent_id, plaintext, timestamp, nonce_hex, iv)  # says why
            _check(rc)
        nonce, signature, sent_at = meta.decode("ascii").split()
        return body, sent_at, nonce, signature

    def _seal_fixed(
        self,
        scheme: int,
        agent_id: bytes,
        plaintext: bytes,
        timestamp: bytes | None,
        nonce_hex: bytes | None,
        iv: bytes | None,
        body: bytes,
        meta: bytes,
    ) -> int:
        """vp_seal_fixed with each given value checked and converted (known-answer tests)."""
        scheme, agent_id, plaintext, timestamp, nonce_hex, iv = seal_args(
            scheme, agent_id, plaintext, timestamp, nonce_hex, iv
        )
        rc: int = _seal_fixed(
            self._key, scheme, agent_id, len(agent_id),
            _NULL if timestamp is None else timestamp, len(timestamp or b""),
            _NULL if nonce_hex is None else nonce_hex, len(nonce_hex or b""),
            _NULL if iv is None else iv, len(iv or b""),
            plaintext, len(plaintext), body, len(body), meta, _META,
        )  # fmt: skip
        return rc

    def seal_many(
        self, scheme: int, agent_id: bytes, plaintexts: Sequence[bytes]
    ) -> list[tuple[bytes, str, str, str]]:
        if type(agent_id) is not bytes or {*map(type, plaintexts)} - {bytes}:
            scheme, agent_id, plaintexts = seal_many_args(scheme, agent_id, plaintexts)
        n = len(plaintexts)
        if n == 0:
            seal_many_args(scheme, agent_id, plaintexts)
            return []
        lens = [len(p) for p in plaintexts]
        ends = list(accumulate(map(_body_len, lens)))
        total = ends[-1]
        joined = b"".join(plaintexts)
        bodies = _new(_CHARS, total)
        metas = _new(_CHARS, _META * n)
        try:
            rc = _seal_many(
                self._key, scheme, agent_id, len(agent_id), n, joined, len(joined), lens,
                bodies, total, metas, _META * n,
            )  # fmt: skip
        except _CONVERSION:
            rc = _ERR_ARG
        if rc != _OK:
            if rc == _ERR_ARG:
                seal_many_args(scheme, agent_id, plaintexts)  # says why
            _check(rc)
        parts = _unpack(metas, _META * n).decode("ascii").split()  # nonce, signature, ts, ...
        view = _buffer(bodies)
        timestamp = parts[2]  # one clock reading for all
        starts = [0, *ends[:-1]]
        return [
            (view[start:end], timestamp, nonce, signature)
            for start, end, nonce, signature in zip(
                starts, ends, parts[0::3], parts[1::3], strict=True
            )
        ]

    def open(
        self,
        scheme: int,
        agent_id: bytes,
        headers: bytes,
        ts_len: int,
        nonce_len: int,
        body: bytes,
    ) -> tuple[int, bytes | None]:
        if type(body) is not bytes or type(headers) is not bytes or type(agent_id) is not bytes:
            return self._open_checked(scheme, agent_id, headers, ts_len, nonce_len, body)
        size = len(body)
        n = size - 57  # _plaintext_len(body), inlined
        if n < 4 or n % 4:
            n = 0
        else:
            n = n // 4 * 3 - (0 if body[-3] != 61 else 2 if body[-4] == 61 else 1)
        try:
            if n >= 2:
                out = _NUL * n  # a fresh object (module docstring)
                rc = _open(
                    self._key, scheme, agent_id, len(agent_id), headers, len(headers), ts_len,
                    nonce_len, body, size, out, n,
                )  # fmt: skip
                if rc == _OK:
                    return rc, out
            else:  # CPython shares its 0- and 1-byte objects: a cffi buffer for those
                small = _new(_CHARS, 1)
                rc = _open(
                    self._key, scheme, agent_id, len(agent_id), headers, len(headers), ts_len,
                    nonce_len, body, size, small, n,
                )  # fmt: skip
                if rc == _OK:
                    return rc, _unpack(small, n)
        except _CONVERSION:  # a length beyond size_t, a scheme beyond int, or not ints at all
            return self._open_checked(scheme, agent_id, headers, ts_len, nonce_len, body)
        if rc < 0:
            if rc == _ERR_ARG:
                open_args(scheme, agent_id, headers, ts_len, nonce_len, body)  # says why
            _check(rc)
        return rc, None

    def _open_checked(
        self,
        scheme: object,
        agent_id: object,
        headers: object,
        ts_len: object,
        nonce_len: object,
        body: object,
    ) -> tuple[int, bytes | None]:
        """open() of converted arguments: TypeError/ValueError for impossible ones, and the
        status of the header a split that does not fit leaves malformed."""
        code, agent, joined, t, m, data, status = open_args(
            scheme, agent_id, headers, ts_len, nonce_len, body
        )
        if status != OPEN_OK:
            return status, None
        return self.open(code, agent, joined, t, m, data)

    @staticmethod
    def open_batch(
        items: Sequence[tuple[KeyEngine, int, bytes, bytes, int, int, bytes]],
    ) -> list[tuple[int, bytes | None]]:
        """open() for each (engine, scheme, agent_id, headers, ts_len, nonce_len, body) in one
        C call, whatever mix of keys the batch holds. A header split that does not fit is that
        request's own status; arguments no request could have raise for the whole batch."""
        n = len(items)
        if n == 0:
            return []
        engines = [item[0] for item in items]
        if {*map(type, engines)} != {KeyEngine}:
            raise TypeError("open_batch items must each hold a native KeyEngine")
        keys = [engine._key for engine in engines]
        parts = [part for _, _, a, h, _, _, b in items for part in (a, h, b)]
        if {*map(type, parts)} != {bytes}:
            items = [_batch_item(item) for item in items]
            parts = [part for _, _, a, h, _, _, b in items for part in (a, h, b)]
        fields = b"".join(parts)
        field_lens = _field_lens(items)
        schemes = [item[1] for item in items]
        room = sum(field_lens[4::5])
        out = _new(_CHARS, room or 1)
        pt_lens = _new("size_t[]", n)
        statuses = _new("int[]", n)
        try:
            rc = _open_many(
                keys, schemes, n, fields, len(fields), field_lens, out, room, pt_lens, statuses
            )
        except _CONVERSION:
            items = [_batch_item(item) for item in items]  # raises, or makes the lengths fit
            field_lens = _field_lens(items)
            schemes = [item[1] for item in items]
            rc = _open_many(
                keys, schemes, n, fields, len(fields), field_lens, out, room, pt_lens, statuses
            )
        if rc == _ERR_ARG:
            for item in items:
                open_args(*item[1:])  # says which argument
        _check(rc)
        view = _buffer(out)
        results: list[tuple[int, bytes | None]] = []
        start = 0
        for status, length, size in zip(
            _unpack(statuses, n), _unpack(pt_lens, n), field_lens[4::5], strict=True
        ):
            if status == OPEN_OK:
                results.append((status, view[start : start + length]))
            else:
                if status < 0:
                    _check(status)
                results.append((status, None))
            start += size
        return results


def _field_lens(items: Sequence[tuple[KeyEngine, int, bytes, bytes, int, int, bytes]]) -> list[int]:
    """vp_open_many's five lengths per request: agent, headers, ts_len, nonce_len, body."""
    return [n for _, _, a, h, t, m, b in items for n in (len(a), len(h), t, m, len(b))]


def _batch_item(
    item: tuple[KeyEngine, int, bytes, bytes, int, int, bytes],
) -> tuple[KeyEngine, int, bytes, bytes, int, int, bytes]:
    """One open_batch item with its arguments converted (TypeError/ValueError as open() raises
    them) and a header split that does not fit replaced by one that C answers with the same
    status as open() would (ts_len or nonce_len beyond the header bytes)."""
    engine, scheme, agent_id, headers, ts_len, nonce_len, body = item
    code, agent, joined, t, m, data, status = open_args(
        scheme, agent_id, headers, ts_len, nonce_len, body
    )
    if status == OPEN_BAD_TIMESTAMP:
        t, m = len(joined) + 1, 0
    elif status == OPEN_BAD_NONCE:
        m = len(joined) - t + 1
    return engine, code, agent, joined, t, m, data


# ---------------------------------------------------------------- self-test

# McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 15 (AES-256, no AAD) and
# 16 (the same key and IV, 60 bytes of that plaintext, 20 bytes of AAD).
_KAT_KEY = bytes.fromhex("feffe9928665731c6d6a8f9467308308" * 2)
_KAT_IV = bytes.fromhex("cafebabefacedbaddecaf888")
_KAT_PT = bytes.fromhex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
_KAT_CT_TAG = bytes.fromhex(
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
    "b094dac5d93471bdec1a502270e3cc6c"
)
_KAT_AAD = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
_KAT_TAG_16 = bytes.fromhex("76fc6ece0f4e1768cddf8853bb2d551b")
# A request sealed with the key, IV and the values below (transfer scheme), computed with
# hashlib, base64 and pyca/cryptography (tests/test_native_layer.py recomputes it).
_KAT_AGENT = b"vpseal-selftest"
_KAT_TS = b"1769746894501"
_KAT_NONCE = b"56ffd5ecd8a3a4457863a0bd7c298fb2"
_KAT_PAYLOAD = b'{"selfTest":true}'
_KAT_BODY = b'{"cipherText":"yv66vvrO263eyviIE/pd4bfiUI8J59k/2atdOA==8D6AsA20L4ciUhxc8QMRgp8="}'
_KAT_SIGNATURE = "9e00f0520f6d683365fc6ab85fb91860f499c49f0d4bbca87cd6d65ea9f97915"
_SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _self_test() -> str | None:
    """None when every output path gives known answers back, else what went wrong.

    Each path C writes an output through is exercised once, with an answer that an output left
    unwritten (zeros, or a copy C wrote into instead) cannot match.
    """
    try:
        probe = object()
        for n in (2, 16, 80, _META):  # a fresh object is referenced from here alone
            out = _NUL * n
            if sys.getrefcount(out) != sys.getrefcount(probe):
                return f"_NUL * {n} did not make a new bytes object"
        engine = KeyEngine(_KAT_KEY)
        if engine.encrypt(_KAT_IV, _KAT_PT) != _KAT_CT_TAG:
            return "AES-256-GCM encrypt gave a wrong answer"
        if engine.decrypt(_KAT_IV, _KAT_CT_TAG) != _KAT_PT:
            return "AES-256-GCM decrypt gave a wrong answer"
        with_aad = _KAT_CT_TAG[:60] + _KAT_TAG_16
        if engine.encrypt(_KAT_IV, _KAT_PT[:60], _KAT_AAD) != with_aad:
            return "AES-256-GCM encrypt with AAD gave a wrong answer"
        if engine.decrypt(_KAT_IV, with_aad, _KAT_AAD) != _KAT_PT[:60]:
            return "AES-256-GCM decrypt with AAD gave a wrong answer"
        if engine.decrypt(_KAT_IV, KeyEngine(_KAT_KEY).encrypt(_KAT_IV, b"\x01")) != b"\x01":
            return "AES-256-GCM decrypt of one byte gave a wrong answer"
        sealed = engine.seal(
            SCHEME_TRANSFER, _KAT_AGENT, _KAT_PAYLOAD, _KAT_TS, _KAT_NONCE, _KAT_IV
        )
        if sealed != (_KAT_BODY, _KAT_TS.decode(), _KAT_NONCE.decode(), _KAT_SIGNATURE):
            return "seal with fixed values gave a wrong request"
        headers = _KAT_TS + _KAT_NONCE + _KAT_SIGNATURE.encode()
        item = (engine, SCHEME_TRANSFER, _KAT_AGENT, headers, len(_KAT_TS), 32, _KAT_BODY)
        if engine.open(*item[1:]) != (OPEN_OK, _KAT_PAYLOAD):
            return "open of a known request gave a wrong answer"
        if KeyEngine.open_batch([item, item]) != [(OPEN_OK, _KAT_PAYLOAD)] * 2:
            return "open_batch of a known request gave a wrong answer"
        for scheme in (SCHEME_TRANSFER, SCHEME_PIPE):
            body, ts, nonce, signature = engine.seal(scheme, _KAT_AGENT, _KAT_PAYLOAD)
            joined = (ts + nonce + signature).encode("ascii")
            opened = engine.open(scheme, _KAT_AGENT, joined, len(ts), 32, body)
            if opened != (OPEN_OK, _KAT_PAYLOAD):
                return "a freshly sealed request did not open"
        if sha256_hex(b"abc") != _SHA256_ABC:
            return "SHA-256 gave a wrong answer"
        if random_bytes(32) == bytes(32):
            return "the CSPRNG returned zeros"
    except Exception as exc:  # any failure at all means the engine must not load
        return f"{type(exc).__name__}: {exc}"
    return None


_failure = _self_test()
if _failure is not None:
    raise ImportError(
        f"vpseal's native engine failed its known-answer self-test ({_failure}); its outputs"
        " cannot be trusted on this interpreter"
    )
