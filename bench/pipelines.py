"""What a user would write instead of vpseal: hand-made seal/open pipelines on `cryptography`
and on pycryptodome, following SPEC.md exactly (the peers of the envelope benchmarks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from decimal import Decimal
from typing import Any

from Crypto.Cipher import AES
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _headers(agent_id: str, timestamp: str, nonce: str, body: bytes) -> dict[str, str]:
    signature = hashlib.sha256((agent_id + timestamp + nonce).encode() + body).hexdigest()
    return {
        "Content-Type": "application/json",
        "x-agentid": agent_id,
        "x-timestamp": timestamp,
        "x-nonce": nonce,
        "x-signature": signature,
    }


class CryptographyPipeline:
    """json.dumps + os.urandom + AESGCM + base64 + secrets + hashlib."""

    def __init__(self, agent_id: str, key: bytes) -> None:
        self.agent_id = agent_id
        self.key = key
        self.aead = AESGCM(key)

    def encrypt(self, iv: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
        sealed = self.aead.encrypt(iv, plaintext, None)
        return sealed[:-16], sealed[-16:]

    def decrypt(self, iv: bytes, ciphertext: bytes, tag: bytes) -> bytes:
        return self.aead.decrypt(iv, ciphertext + tag, None)

    def seal(self, payload: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        plaintext = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        iv = os.urandom(12)
        ciphertext, tag = self.encrypt(iv, plaintext)
        wire = (
            base64.b64encode(iv) + base64.b64encode(tag) + base64.b64encode(ciphertext)
        ).decode()
        body = json.dumps({"cipherText": wire}, separators=(",", ":")).encode()
        timestamp = str(int(time.time() * 1000))
        return _headers(self.agent_id, timestamp, secrets.token_hex(16), body), body

    def open(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        expected = hashlib.sha256(
            (headers["x-agentid"] + headers["x-timestamp"] + headers["x-nonce"]).encode() + body
        ).hexdigest()
        if not hmac.compare_digest(expected, headers["x-signature"]):
            raise ValueError("bad signature")
        wire = json.loads(body)["cipherText"]
        iv = base64.b64decode(wire[:16], validate=True)
        tag = base64.b64decode(wire[16:40], validate=True)
        ciphertext = base64.b64decode(wire[40:], validate=True)
        result: dict[str, Any] = json.loads(self.decrypt(iv, ciphertext, tag), parse_float=Decimal)
        return result


class PycryptodomePipeline(CryptographyPipeline):
    """The same pipeline with pycryptodome's AES.new(..., MODE_GCM) per message."""

    def encrypt(self, iv: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
        return AES.new(self.key, AES.MODE_GCM, nonce=iv).encrypt_and_digest(plaintext)  # type: ignore[no-any-return]

    def decrypt(self, iv: bytes, ciphertext: bytes, tag: bytes) -> bytes:
        return AES.new(self.key, AES.MODE_GCM, nonce=iv).decrypt_and_verify(ciphertext, tag)  # type: ignore[no-any-return]
