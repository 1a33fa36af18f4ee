"""The native engine: a thin layer over the compiled C module (csrc/vpseal.c).

Each operation crosses into C once. Outputs are written straight into freshly made ``bytes``
objects of their final size (the way C extensions use ``PyBytes_FromStringAndSize(NULL, n)``):
nobody else holds a reference yet, and lengths are always >= 2 so CPython's shared one-byte
objects are never touched. C failures become exceptions here; statuses pass through.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from vpseal._args import aead_args
from vpseal._protocol import OPEN_OK
from vpseal.errors import InvalidTag

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
_META = lib.VP_META_LEN  # nonce (32) + signature (64) + timestamp (20, space-padded)
_from_buffer = ffi.from_buffer
_NULL = ffi.NULL
_OK = lib.VP_OK
# Output buffers are passed to C as fresh ``bytes`` objects (cffi hands C their storage).
_encrypt = lib.vp_encrypt
_decrypt = lib.vp_decrypt
_seal = lib.vp_seal
_seal_fixed = lib.vp_seal_fixed
_seal_many = lib.vp_seal_many
_open = lib.vp_open


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
    if rc == lib.VP_ERR_ARG:
        raise ValueError("vpseal native engine rejected an argument (length or pointer)")
    if rc != _OK:
        raise RuntimeError("OpenSSL failed inside vpseal's native engine")


def openssl_version() -> str | None:
    return str(ffi.string(lib.vp_openssl_version()).decode("ascii", "replace"))


def random_bytes(n: int) -> bytes:
    if n < 2:
        return random_bytes(2)[:n]
    out = bytes(n)
    _check(lib.vp_random(_from_buffer(out), n))
    return out


def sha256_hex(data: bytes) -> str:
    out = bytes(64)
    _check(lib.vp_sha256_hex(data, len(data), _from_buffer(out)))
    return out.decode("ascii")


class KeyEngine:
    """A C key object: keyed OpenSSL context made once, per-call workers pooled in C."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        handle = lib.vp_key_new(key, len(key))
        if handle == _NULL:
            raise RuntimeError("OpenSSL could not set up an AES-256-GCM key")
        self._key: Any = ffi.gc(handle, lib.vp_key_free)

    def encrypt(self, iv: bytes, plaintext: bytes, aad: bytes | None = None) -> bytes:
        """ciphertext || 16-byte tag (the AesGcm.encrypt contract, checks included)."""
        if (
            type(iv) is not bytes
            or len(iv) != 12
            or type(plaintext) is not bytes
            or aad is not None
        ):
            iv, plaintext, aad = aead_args(iv, plaintext, aad, "plaintext")
        else:
            aad = b""
        n = len(plaintext) + _TAG
        out = bytes(n)
        rc = _encrypt(self._key, iv, 12, aad, len(aad), plaintext, n - _TAG, out, n)
        if rc != _OK:
            _check(rc)
        return out

    def decrypt(self, iv: bytes, data: bytes, aad: bytes | None = None) -> bytes:
        """Plaintext of ciphertext || tag; InvalidTag on any authentication failure."""
        if type(iv) is not bytes or len(iv) != 12 or type(data) is not bytes or aad is not None:
            iv, data, aad = aead_args(iv, data, aad, "data")
        else:
            aad = b""
        n = len(data) - _TAG
        if n >= 2:
            out = bytes(n)
            rc = _decrypt(self._key, iv, 12, aad, len(aad), data, n + _TAG, out, n)
            if rc == _OK:
                return out
        elif n >= 0:  # CPython shares its 0- and 1-byte objects: never write into those
            small = bytearray(n)
            rc = _decrypt(self._key, iv, 12, aad, len(aad), data, n + _TAG, _from_buffer(small), n)
            if rc == _OK:
                return bytes(small)
        else:
            rc = lib.VP_BAD_TAG
        if rc != lib.VP_BAD_TAG:
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
        n = len(plaintext)
        body = bytes(_body_len(n))
        meta = bytes(_META)
        if timestamp is None and nonce_hex is None and iv is None:
            rc = _seal(
                self._key, scheme, agent_id, len(agent_id), plaintext, n, body, len(body), meta
            )
        else:
            rc = _seal_fixed(
                self._key, scheme, agent_id, len(agent_id),
                _NULL if timestamp is None else timestamp, len(timestamp or b""),
                _NULL if nonce_hex is None else nonce_hex, len(nonce_hex or b""),
                _NULL if iv is None else iv, len(iv or b""),
                plaintext, n, body, len(body), meta,
            )  # fmt: skip
        if rc != _OK:
            _check(rc)
        text = meta.decode("ascii")
        return body, text[96:].rstrip(), text[:32], text[32:96]

    def seal_many(
        self, scheme: int, agent_id: bytes, plaintexts: Sequence[bytes]
    ) -> list[tuple[bytes, str, str, str]]:
        n = len(plaintexts)
        if n == 0:
            return []
        lens = [len(p) for p in plaintexts]
        ends = list(accumulate(map(_body_len, lens)))
        total = ends[-1]
        bodies = bytes(total)  # >= 58 bytes: a fresh object, never a shared one
        metas = bytes(_META * n)
        rc = _seal_many(
            self._key, scheme, agent_id, len(agent_id), n, b"".join(plaintexts), lens,
            bodies, total, metas,
        )  # fmt: skip
        if rc != _OK:
            _check(rc)
        text = metas.decode("ascii")
        timestamp = text[96:_META].rstrip()
        starts = [0, *ends[:-1]]
        return [
            (bodies[start:end], timestamp, text[m : m + 32], text[m + 32 : m + 96])
            for start, end, m in zip(starts, ends, range(0, _META * n, _META), strict=True)
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
        n = _plaintext_len(body)
        if n >= 2:
            out = bytes(n)
            rc = _open(
                self._key, scheme, agent_id, len(agent_id), headers, ts_len, nonce_len,
                len(headers) - ts_len - nonce_len, body, len(body), out, n,
            )  # fmt: skip
            if rc == _OK:
                return rc, out
        else:  # CPython shares its 0- and 1-byte objects: never write into those
            small = bytearray(n)
            rc = _open(
                self._key, scheme, agent_id, len(agent_id), headers, ts_len, nonce_len,
                len(headers) - ts_len - nonce_len, body, len(body), _from_buffer(small), n,
            )  # fmt: skip
            if rc == _OK:
                return rc, bytes(small)
        if rc < 0:
            _check(rc)
        return rc, None

    @staticmethod
    def open_batch(
        items: Sequence[tuple[KeyEngine, int, bytes, bytes, int, int, bytes]],
    ) -> list[tuple[int, bytes | None]]:
        """open() for each (engine, scheme, agent_id, headers, ts_len, nonce_len, body) in one
        C call, whatever mix of keys the batch holds."""
        n = len(items)
        if n == 0:
            return []
        fields = b"".join([part for _, _, a, h, _, _, b in items for part in (a, h, b)])
        field_lens = [
            length
            for _, _, a, h, t, m, b in items
            for length in (len(a), t, m, len(h) - t - m, len(b))
        ]
        keys = ffi.new("vp_key *[]", [item[0]._key for item in items])
        # each plaintext is written into the room of its body; >= 2 bytes keeps the object fresh
        out = bytes(max(2, sum(field_lens[4::5])))
        pt_lens = ffi.new("size_t[]", n)
        statuses = ffi.new("int[]", n)
        _check(
            lib.vp_open_many(
                keys, [item[1] for item in items], n, fields, len(fields), field_lens,
                out, len(out), pt_lens, statuses,
            )
        )  # fmt: skip
        results: list[tuple[int, bytes | None]] = []
        start = 0
        for rc, length, room in zip(
            ffi.unpack(statuses, n), ffi.unpack(pt_lens, n), field_lens[4::5], strict=True
        ):
            if rc == OPEN_OK:
                results.append((rc, out[start : start + length]))
            else:
                if rc < 0:
                    _check(rc)
                results.append((rc, None))
            start += room
        return results
