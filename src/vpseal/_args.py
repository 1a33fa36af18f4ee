"""Argument checks of the AES-GCM API, shared by both engines so that their errors agree.

Engines test the common case inline (``type(x) is bytes`` and the IV length) and call
``aead_args`` only when that fails: it converts bytes-likes or raises naming the parameter.
"""

from __future__ import annotations

IV_SIZE = 12


def as_bytes(name: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def aead_args(iv: object, data: object, aad: object, data_name: str) -> tuple[bytes, bytes, bytes]:
    """(iv, data, aad) as bytes, aad b"" when None; TypeError/ValueError naming the culprit."""
    iv = as_bytes("iv", iv)
    if len(iv) != IV_SIZE:
        raise ValueError(f"iv must be {IV_SIZE} bytes, got {len(iv)}")
    return iv, as_bytes(data_name, data), b"" if aad is None else as_bytes("aad", aad)
