"""The fallback engine: AES-256-GCM assembled from pycryptodome's raw parts, plus hashlib.

``AES.new(key, AES.MODE_GCM, nonce=iv)`` costs 33-45 us a message because it expands the key
three times and rebuilds the GHASH table on every call. Here each key does that work once, in
``KeyEngine.__init__``: one ECB object (the key schedule), H = E_K(0^128) and pycryptodome's
expanded GHASH table. A message then costs two C calls: one ECB pass over J0, J0+1, ... gives
the tag mask E_K(J0) and the CTR keystream, and one GHASH pass gives the tag. Long messages
take a CTR object for the keystream instead, since counter blocks built in Python cost more
than its set-up there.

This reaches into pycryptodome internals (``_mode_gcm``'s GHASH libraries, ``_mode_ecb``'s
raw library and the ECB object's ``_state``); the version range is pinned in pyproject.toml.
The internals are guarded: if they cannot be imported, or the engine built on them does not
give the known answers at import (McGrew & Viega test case 16, and agreement with the public
API on a long message), ``KeyEngine`` is ``_PublicKeyEngine`` instead, which encrypts through
pycryptodome's public GCM API (``AES.new(key, AES.MODE_GCM, nonce=iv)``): several times
slower per short message (the per-key work is redone each time), the same bytes.
``PUBLIC_GCM_REASON`` then says why (None on the fast path). Where only the raw ECB library
is missing, the public ECB method is used instead.

Everything per key is read-only after ``__init__`` and every message gets fresh
buffers, so one KeyEngine may be shared between threads.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
from binascii import Error as _B64Error
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable, Sequence
from hmac import compare_digest
from typing import Any

from Crypto.Cipher import AES

from vpseal._args import (
    GCM_MAX_BYTES,
    RANDOM_MAX,
    aead_args,
    as_bytes,
    header_split,
    key_bytes,
    open_args,
    random_count,
    seal_args,
    seal_many_args,
    too_long,
)
from vpseal._protocol import (
    BODY_PREFIX,
    BODY_SUFFIX,
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

# pycryptodome internals (see the module docstring); if any is missing, the public GCM API.
_internals_error: str | None = None
try:
    from Crypto.Cipher import _mode_gcm
    from Crypto.Util import _raw_api
    from Crypto.Util._raw_api import (
        SmartPointer,
        VoidPointer,
        c_size_t,
        c_uint8_ptr,
        create_string_buffer,
        get_raw_buffer,
    )
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    _internals_error = f"pycryptodome internals not importable ({exc})"

NAME = "fallback"

_TAG = 16
_IV = 12
_NONCE = 16
# Above this many bytes (plaintext or AAD) a message takes the long path: a CTR object for
# the keystream and GHASH in pieces. The short path grows by about 2.8 us per KiB, the long
# path costs about 15 us up front (a CTR object per message) plus 0.5 us per KiB; measured
# crossover on AMD Zen 4 is about 5 KiB.
_LONG = 5120
# Counter suffixes uint32_be(1), uint32_be(2), ... after a leading b"": iv.join(_CTRS[:k + 1])
# is J0 || J0+1 || ... || J0+k-1 in one C-level join. Counters start at 1 (J0 = iv || 1) and a
# message below _LONG needs fewer than 2^32 of them, so no wrap-around can occur.
_CTRS = [b"", *(struct.pack(">I", i) for i in range(1, (_LONG >> 4) + 3))]
_ZEROS = bytes(16)
_J0_SUFFIX = b"\x00\x00\x00\x01"
_LENGTHS = struct.Struct(">QQ").pack
_PREFIX_LEN = len(BODY_PREFIX)
_SUFFIX_LEN = len(BODY_SUFFIX)
_MIN_BODY = _PREFIX_LEN + _SUFFIX_LEN
_MIN_WIRE = 16 + 24 + 4  # b64(iv) + b64(tag) + at least one base64 quantum of ciphertext
_SIG_LEN = 64
_SEAL_RANDOM = _NONCE + _IV
_LOWER_HEX = b"0123456789abcdef"

_Bytes = bytes | bytearray  # what the C wrappers below return; both slice and int.from_bytes
_from_bytes = int.from_bytes
_sha256 = hashlib.sha256
_urandom = os.urandom

# The GHASH implementation pycryptodome itself would pick (CLMUL/PMULL, else portable C).
_GHASH_LIB: Any = None
# With the cffi backend the raw libraries take bytes and Python ints directly, so the per-call
# wrappers (c_uint8_ptr, c_size_t, the ECB object's output handling) can be skipped.
_ffi: Any = None
_raw_ecb: Any = None
if _internals_error is None:
    try:
        _GHASH_LIB = getattr(_mode_gcm, "_ghash_clmul", None) or _mode_gcm._ghash_portable
        if _GHASH_LIB is None:
            raise AttributeError("no GHASH library")
        _ffi = getattr(_raw_api, "ffi", None) if _raw_api.backend == "cffi" else None
    except AttributeError as exc:
        _internals_error = f"pycryptodome's GHASH internals changed ({exc})"
if _ffi is not None:
    try:
        from Crypto.Cipher._mode_ecb import raw_ecb_lib as _raw_ecb
    except ImportError:  # pragma: no cover - a pycryptodome without the raw ECB library
        _raw_ecb = None


def openssl_version() -> str | None:
    """None: this engine does not use OpenSSL."""
    return None


def random_bytes(n: int) -> bytes:
    """os.urandom: a CSPRNG that holds no state in this process, so fork() cannot repeat it."""
    if type(n) is not int or not 0 <= n <= RANDOM_MAX:
        n = random_count(n)
    return _urandom(n)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256, the signature primitive of both schemes."""
    if type(data) is not bytes:
        data = as_bytes("data", data)
    return _sha256(data).hexdigest()


def _now_ms_text() -> bytes:
    return str(time.time_ns() // 1_000_000).encode("ascii")


def _valid_timestamp(timestamp: bytes) -> bool:
    return 0 < len(timestamp) <= 16 and timestamp.isdigit()  # bytes.isdigit is ASCII-only


def _b64(data: bytes) -> bytes:
    """Standard padded base64 without a newline (binascii is the fastest encoder)."""
    return b2a_base64(data, newline=False)


def _make_ecb(key: bytes) -> Callable[[bytes], _Bytes]:
    """An AES-256 ECB encryptor over whole blocks, keyed once.

    The function holds the ECB object, so the key schedule lives exactly as long as it does.
    ECB encryption is a pure function of its input (the raw library only reads the expanded
    key), so the function may run in several threads at once.
    """
    ecb: Any = AES.new(key, AES.MODE_ECB)
    state = getattr(getattr(ecb, "_state", None), "get", None)
    if _raw_ecb is None or state is None:  # pragma: no cover - other backends or versions
        public: Callable[[bytes], _Bytes] = ecb.encrypt
        return public
    raw = state()
    call = _raw_ecb.ECB_encrypt
    into = _ffi.from_buffer

    def encrypt(blocks: bytes, _owner: Any = ecb) -> _Bytes:
        # A fresh bytearray for C to write into: cheaper than ffi.new() plus a copy out.
        n = len(blocks)
        out = bytearray(n)
        if call(raw, blocks, into("uint8_t[]", out), n):
            raise ValueError("AES-ECB failed (input not a whole number of blocks)")
        return out

    return encrypt


def _make_ghash(h: _Bytes) -> tuple[Callable[[bytes], _Bytes], Callable[[list[Any]], _Bytes]]:
    """(ghash, ghash_parts) over pycryptodome's expanded table for subkey h.

    ghash(data) hashes one buffer of whole blocks from a zero state; ghash_parts(parts) chains
    several (for long messages, without copying them together). Each call writes into its own
    fresh 16-byte state, and the expanded table is only read, so both are thread-safe. Both
    hold the table's SmartPointer, which frees it once neither is referenced any more.
    """
    lib = _GHASH_LIB
    pointer = VoidPointer()
    rc = lib.ghash_expand(c_uint8_ptr(h), pointer.address_of())
    if rc:  # pragma: no cover - only an allocation failure
        raise MemoryError(f"pycryptodome could not expand the GHASH key (error {rc})")
    owner = SmartPointer(pointer.get(), lib.ghash_destroy)
    table = owner.get()
    call = lib.ghash

    def ghash_parts(parts: list[Any], _owner: Any = owner) -> _Bytes:
        y = create_string_buffer(16)
        for part in parts:
            ptr = c_uint8_ptr(part)
            size = len(part) if isinstance(part, bytes) else memoryview(part).nbytes
            if call(y, ptr, c_size_t(size), y, table):
                raise ValueError("GHASH failed (input not a whole number of blocks)")
        return get_raw_buffer(y)

    if _ffi is None:  # pragma: no cover - the ctypes backend

        def ghash(data: bytes) -> _Bytes:
            return ghash_parts([data])

        return ghash, ghash_parts

    into = _ffi.from_buffer
    zeros = _ZEROS

    def ghash_cffi(data: bytes, _owner: Any = owner) -> _Bytes:
        y = bytearray(16)
        if call(into("uint8_t[]", y), data, len(data), zeros, table):
            raise ValueError("GHASH failed (input not a whole number of blocks)")
        return y

    return ghash_cffi, ghash_parts


class KeyEngine:
    """One AES-256 key: key schedule, H and GHASH table made once; safe to share between threads."""

    __slots__ = ("_ecb", "_ghash", "_ghash_parts", "_key")

    def __init__(self, key: bytes) -> None:
        key = key_bytes(key)
        self._key = key
        self._ecb = _make_ecb(key)
        self._ghash, self._ghash_parts = _make_ghash(self._ecb(_ZEROS))

    # -- AES-256-GCM -----------------------------------------------------------------------

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes | None = None) -> bytes:
        """ciphertext || 16-byte tag (the AesGcm.encrypt contract, checks included)."""
        if (
            type(iv) is not bytes
            or len(iv) != _IV
            or type(plaintext) is not bytes
            or aad is not None
        ):
            iv, plaintext, aad = aead_args(iv, plaintext, aad, "plaintext")
        else:
            aad = b""
        if len(plaintext) > _LONG or len(aad) > _LONG:
            if len(plaintext) > GCM_MAX_BYTES:
                raise too_long("plaintext")
            ct, tag = self._encrypt_long(iv, plaintext, aad)
        else:
            ct, tag = self._encrypt_short(iv, plaintext, aad)
        return ct + tag

    def _keystream(self, iv: bytes, n: int) -> _Bytes:
        """E(J0) || E(J0+1) || ...: the tag mask, then the CTR keystream for n bytes."""
        return self._ecb(iv.join(_CTRS[: ((n + 15) >> 4) + 2]))

    def _tag(self, ks: _Bytes, aad: bytes, ct: bytes) -> bytes:
        """GHASH over the zero-padded aad and ct and their bit lengths, masked with E(J0)."""
        n = len(ct)
        if aad:
            la = len(aad)
            s = self._ghash(
                aad + _ZEROS[: -la & 15] + ct + _ZEROS[: -n & 15] + _LENGTHS(la << 3, n << 3)
            )
        else:
            s = self._ghash(ct + _ZEROS[: -n & 15] + _LENGTHS(0, n << 3))
        return (_from_bytes(s, "big") ^ _from_bytes(ks[:16], "big")).to_bytes(16, "big")

    def _encrypt_short(self, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """(ciphertext, tag) with two C calls: one ECB pass and one GHASH."""
        n = len(plaintext)
        ks = self._keystream(iv, n)
        ct = (_from_bytes(plaintext, "big") ^ _from_bytes(ks[16 : 16 + n], "big")).to_bytes(
            n, "big"
        )
        return ct, self._tag(ks, aad, ct)

    def decrypt(self, iv: bytes, data: bytes, aad: bytes | None = None) -> bytes:
        """Plaintext of ciphertext || tag; InvalidTag on any authentication failure."""
        if type(iv) is not bytes or len(iv) != _IV or type(data) is not bytes or aad is not None:
            iv, data, aad = aead_args(iv, data, aad, "data")
        else:
            aad = b""
        n = len(data) - _TAG
        plaintext = self._decrypt(iv, data[:n], data[n:], aad) if n >= 0 else None
        if plaintext is None:
            raise InvalidTag("AES-GCM authentication failed")
        return plaintext

    def _decrypt(self, iv: bytes, ct: bytes, tag: bytes, aad: bytes) -> bytes | None:
        """Verify the tag first; only then make (and release) the plaintext."""
        n = len(ct)
        if n > _LONG or len(aad) > _LONG:
            if n > GCM_MAX_BYTES:
                raise too_long("data")
            return self._decrypt_long(iv, ct, tag, aad)
        ks = self._keystream(iv, n)
        expected = self._tag(ks, aad, ct)
        if not compare_digest(expected, tag):
            return None
        return (_from_bytes(ct, "big") ^ _from_bytes(ks[16 : 16 + n], "big")).to_bytes(n, "big")

    def _tag_long(self, iv: bytes, ct: bytes, aad: bytes) -> bytes:
        """GHASH in chained pieces so that a long ciphertext is never copied."""
        n = len(ct)
        la = len(aad)
        whole = n & ~15
        parts: list[Any] = []
        if aad:
            parts.append(aad + _ZEROS[: -la & 15])
        if whole:
            parts.append(ct if whole == n else memoryview(ct)[:whole])
        parts.append(ct[whole:] + _ZEROS[: -n & 15] + _LENGTHS(la << 3, n << 3))
        s = self._ghash_parts(parts)
        mask = self._ecb(iv + _J0_SUFFIX)
        return (_from_bytes(s, "big") ^ _from_bytes(mask, "big")).to_bytes(16, "big")

    def _ctr(self, iv: bytes) -> Any:
        """CTR from J0 + 1 = iv || 2: the GCM keystream, computed in C at full speed.

        Its 32-bit counter refuses to wrap (OverflowError), which is GCM's own length limit.
        """
        return AES.new(self._key, AES.MODE_CTR, nonce=iv, initial_value=2)

    def _encrypt_long(self, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        ct = bytes(self._ctr(iv).encrypt(plaintext)) if plaintext else b""
        return ct, self._tag_long(iv, ct, aad)

    def _decrypt_long(self, iv: bytes, ct: bytes, tag: bytes, aad: bytes) -> bytes | None:
        if not compare_digest(self._tag_long(iv, ct, aad), tag):
            return None
        return bytes(self._ctr(iv).decrypt(ct)) if ct else b""

    # -- requests ----------------------------------------------------------------------------

    def seal(
        self,
        scheme: int,
        agent_id: bytes,
        plaintext: bytes,
        timestamp: bytes | None = None,
        nonce_hex: bytes | None = None,
        iv: bytes | None = None,
    ) -> tuple[bytes, str, str, str]:
        """(body, timestamp, nonce hex, signature hex). None timestamp: the clock; a None nonce
        or IV is drawn fresh from os.urandom.

        body is exactly BODY_PREFIX + wire + BODY_SUFFIX, wire = b64(iv) + b64(tag) + b64(ct).
        """
        if (
            type(plaintext) is not bytes
            or type(agent_id) is not bytes
            or type(scheme) is not int
            or (scheme != SCHEME_TRANSFER and scheme != SCHEME_PIPE)
            or not plaintext
            or len(plaintext) > GCM_MAX_BYTES
            or timestamp is not None
            or nonce_hex is not None
            or iv is not None
        ):
            scheme, agent_id, plaintext, timestamp, nonce_hex, iv = seal_args(
                scheme, agent_id, plaintext, timestamp, nonce_hex, iv
            )
        if timestamp is None:
            timestamp = _now_ms_text()
        if nonce_hex is None:
            if iv is None:  # the usual case: one system call for both
                fresh = random_bytes(_SEAL_RANDOM)
                nonce_hex = fresh[:_NONCE].hex().encode("ascii")
                iv = fresh[_NONCE:]
            else:
                nonce_hex = random_bytes(_NONCE).hex().encode("ascii")
        if iv is None:
            iv = random_bytes(_IV)
        return self._seal(scheme, agent_id, timestamp, nonce_hex, iv, plaintext)

    def _seal(
        self,
        scheme: int,
        agent_id: bytes,
        timestamp: bytes,
        nonce_hex: bytes,
        iv: bytes,
        plaintext: bytes,
    ) -> tuple[bytes, str, str, str]:
        n = len(plaintext)
        if n > _LONG:
            ct, tag = self._encrypt_long(iv, plaintext, b"")
        else:
            ct, tag = self._encrypt_short(iv, plaintext, b"")
        wire = _b64(iv) + _b64(tag) + _b64(ct)
        body = BODY_PREFIX + wire + BODY_SUFFIX
        if scheme == SCHEME_PIPE:
            sig = _sha256(b"|".join((agent_id, timestamp, nonce_hex, wire))).hexdigest()
        else:
            sig = _sha256(agent_id + timestamp + nonce_hex + body).hexdigest()
        return body, timestamp.decode("ascii"), nonce_hex.decode("ascii"), sig

    def seal_many(
        self, scheme: int, agent_id: bytes, plaintexts: Sequence[bytes]
    ) -> list[tuple[bytes, str, str, str]]:
        """seal() for each plaintext with one clock reading and fresh nonces and IVs: one
        os.urandom call for all."""
        if (
            type(agent_id) is not bytes
            or type(scheme) is not int
            or (scheme != SCHEME_TRANSFER and scheme != SCHEME_PIPE)
            or {*map(type, plaintexts)} - {bytes}
            or not all(plaintexts)
            or sum(map(len, plaintexts)) > GCM_MAX_BYTES
        ):
            scheme, agent_id, plaintexts = seal_many_args(scheme, agent_id, plaintexts)
        count = len(plaintexts)
        if count == 0:
            return []
        pool = random_bytes(_SEAL_RANDOM * count)
        timestamp = _now_ms_text()
        seal = self._seal
        out: list[tuple[bytes, str, str, str]] = []
        append = out.append
        at = 0
        for plaintext in plaintexts:
            mid = at + _NONCE
            end = mid + _IV
            append(
                seal(
                    scheme,
                    agent_id,
                    timestamp,
                    pool[at:mid].hex().encode("ascii"),
                    pool[mid:end],
                    plaintext,
                )
            )
            at = end
        return out

    def open(
        self,
        scheme: int,
        agent_id: bytes,
        headers: bytes,
        ts_len: int,
        nonce_len: int,
        body: bytes,
    ) -> tuple[int, bytes | None]:
        """(status, plaintext if status == OPEN_OK else None); checks in the order of the
        OPEN_* constants. The signature is compared case-insensitively in constant time."""
        if (
            type(headers) is not bytes
            or type(body) is not bytes
            or type(agent_id) is not bytes
            or type(scheme) is not int
            or (scheme != SCHEME_TRANSFER and scheme != SCHEME_PIPE)
            or type(ts_len) is not int
            or type(nonce_len) is not int
        ):
            scheme, agent_id, headers, ts_len, nonce_len, body, status = open_args(
                scheme, agent_id, headers, ts_len, nonce_len, body
            )
            if status != OPEN_OK:
                return status, None
        elif ts_len < 0 or nonce_len < 0 or ts_len + nonce_len > len(headers):
            # a split that does not fit is a malformed header, as in the native engine
            return header_split(headers, ts_len, nonce_len), None
        split = ts_len + nonce_len
        return self._open(
            scheme, agent_id, headers[:ts_len], headers[ts_len:split], headers[split:], body
        )

    def _open(
        self,
        scheme: int,
        agent_id: bytes,
        timestamp: bytes,
        nonce_hex: bytes,
        signature_hex: bytes,
        body: bytes,
    ) -> tuple[int, bytes | None]:
        # (0) header formats
        if not _valid_timestamp(timestamp):
            return OPEN_BAD_TIMESTAMP, None
        if len(nonce_hex) != _NONCE * 2 or nonce_hex.strip(_LOWER_HEX):
            return OPEN_BAD_NONCE, None
        # (1) exactly {"cipherText":"<wire>"} with no quote or backslash inside
        if (
            len(body) < _MIN_BODY
            or not body.startswith(BODY_PREFIX)
            or not body.endswith(BODY_SUFFIX)
        ):
            return OPEN_NOT_CANONICAL, None
        wire = body[_PREFIX_LEN:-_SUFFIX_LEN]
        if b'"' in wire or b"\\" in wire:
            return OPEN_NOT_CANONICAL, None
        # (2) signature over the bytes as received
        if len(signature_hex) != _SIG_LEN:
            return OPEN_BAD_SIGNATURE, None
        if scheme == SCHEME_PIPE:
            digest = _sha256(b"|".join((agent_id, timestamp, nonce_hex, wire)))
        else:
            digest = _sha256(agent_id + timestamp + nonce_hex + body)
        if not compare_digest(digest.hexdigest().encode("ascii"), signature_hex.lower()):
            return OPEN_BAD_SIGNATURE, None
        # (3) strict wire: decoding then re-encoding must give back exactly the same characters,
        # which rules out foreign characters, misplaced '=' and non-zero trailing bits.
        size = len(wire)
        if size < _MIN_WIRE or size & 3:
            return OPEN_BAD_WIRE, None
        try:
            iv = a2b_base64(wire[:16])
            tag = a2b_base64(wire[16:40])
            ct = a2b_base64(wire[40:])
        except _B64Error:
            return OPEN_BAD_WIRE, None
        if len(iv) != _IV or len(tag) != _TAG or not ct or _b64(iv) + _b64(tag) + _b64(ct) != wire:
            return OPEN_BAD_WIRE, None
        # (4) authenticate, then decrypt
        plaintext = self._decrypt(iv, ct, tag, b"")
        if plaintext is None:
            return OPEN_BAD_TAG, None
        return OPEN_OK, plaintext

    @staticmethod
    def open_batch(
        items: Sequence[tuple[KeyEngine, int, bytes, bytes, int, int, bytes]],
    ) -> list[tuple[int, bytes | None]]:
        """open() for each (engine, scheme, agent_id, headers, ts_len, nonce_len, body)."""
        if {type(item[0]) for item in items} - _ENGINE_TYPES:
            raise TypeError("open_batch items must each hold a fallback KeyEngine")
        return [engine.open(s, a, h, t, n, b) for engine, s, a, h, t, n, b in items]


class _PublicKeyEngine(KeyEngine):
    """KeyEngine through pycryptodome's public GCM API only: used when the internals the fast
    path relies on are missing or give wrong answers. Slower (a GCM object per message), the
    same bytes and the same checks (everything above _encrypt_short/_encrypt_long/_decrypt is
    shared)."""

    __slots__ = ()

    def __init__(self, key: bytes) -> None:
        self._key = key_bytes(key)

    def _gcm(self, iv: bytes, aad: bytes) -> Any:
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=iv, mac_len=_TAG)
        if aad:
            cipher.update(aad)
        return cipher

    def _encrypt_short(self, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        ct, tag = self._gcm(iv, aad).encrypt_and_digest(plaintext)
        return bytes(ct), bytes(tag)

    _encrypt_long = _encrypt_short

    def _decrypt(self, iv: bytes, ct: bytes, tag: bytes, aad: bytes) -> bytes | None:
        if len(ct) > GCM_MAX_BYTES:
            raise too_long("data")
        try:  # pycryptodome compares the tags in constant time (through a keyed hash)
            return bytes(self._gcm(iv, aad).decrypt_and_verify(ct, tag))
        except ValueError:
            return None


# McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256, 60 bytes of
# plaintext, 20 bytes of AAD): the same vector the native engine's self-test uses.
_KAT_KEY = bytes.fromhex("feffe9928665731c6d6a8f9467308308" * 2)
_KAT_IV = bytes.fromhex("cafebabefacedbaddecaf888")
_KAT_AAD = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
_KAT_PT = bytes.fromhex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
)
_KAT_CT_TAG = bytes.fromhex(
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
    "76fc6ece0f4e1768cddf8853bb2d551b"
)


def _known_answers(cls: type[KeyEngine]) -> str | None:
    """None if cls gives the known answers on the short and the long path, else why not."""
    try:
        engine = cls(_KAT_KEY)
        if engine.encrypt(_KAT_IV, _KAT_PT, _KAT_AAD) != _KAT_CT_TAG:
            return "wrong known answer (short message)"
        if engine.decrypt(_KAT_IV, _KAT_CT_TAG, _KAT_AAD) != _KAT_PT:
            return "wrong known answer (short message, decrypt)"
        # The long path (CTR object, GHASH in pieces) against the public API.
        long_pt = _KAT_PT * (_LONG // len(_KAT_PT) + 2)
        sealed = engine.encrypt(_KAT_IV, long_pt, _KAT_AAD)
        if sealed != b"".join(_PublicKeyEngine(_KAT_KEY)._encrypt_long(_KAT_IV, long_pt, _KAT_AAD)):
            return "wrong answer on a long message"
        if engine.decrypt(_KAT_IV, sealed, _KAT_AAD) != long_pt:
            return "wrong answer on a long message (decrypt)"
    except Exception as exc:  # an internal that moved can fail in any way
        return f"{type(exc).__name__}: {exc}"
    return None


_FastKeyEngine = KeyEngine
_ENGINE_TYPES = frozenset({_FastKeyEngine, _PublicKeyEngine})

PUBLIC_GCM_REASON: str | None = _internals_error
"""Why KeyEngine is the public-API engine (None: the fast path over pycryptodome internals)."""
if PUBLIC_GCM_REASON is None:
    _failed = _known_answers(KeyEngine)
    if _failed is not None:
        PUBLIC_GCM_REASON = f"pycryptodome's internals gave a {_failed}"
if PUBLIC_GCM_REASON is not None:
    KeyEngine = _PublicKeyEngine  # type: ignore[misc]
