"""One exception tree for everything vpseal raises, split by direction:

- ``RequestError`` and its subclasses (``RequestFormatError`` 11, ``SignatureError`` and
  ``ReplayError`` 83, ``DecryptionError`` 84, ``NonceStoreError`` 7): raised when *you* open a
  request (``open_request``/``open_many``, a server's side); ``api_code`` is the code to answer
  the sender with.
- ``vpseal.APIError`` and its subclasses (``vpseal.api_errors``: ``ParametersError`` 11,
  ``AuthenticationFailed`` 83, ``DecryptionFailed`` 84, ...): raised when *the API answered* a
  client call with that code; with ``TransportError``, ``ResponseFormatError`` and
  ``OutcomeUnknown`` for calls that got no usable answer.
- Below both: ``ConfigError``, ``PayloadError``, ``InvalidTag`` and ``WireFormatError`` for
  keys, payloads and the AES-GCM and wire layers, whichever side uses them.

So the same API code has two classes, one per direction (83: ``SignatureError`` when your
server refuses a request, ``AuthenticationFailed`` when the API refused yours). No message ever
contains a key, secret, token or plaintext.
"""

from __future__ import annotations


class VPSealError(Exception):
    """Base of every exception vpseal raises."""

    api_code: int | None = None


class ConfigError(VPSealError, ValueError):
    """A credential or setting is missing or malformed (reported before any request is made)."""


class PayloadError(VPSealError, ValueError):
    """A payload to seal cannot be written as JSON (unsupported type, NaN, lone surrogate)."""


class InvalidTag(VPSealError):
    """AES-GCM authentication failed: wrong key, IV, AAD, or tampered ciphertext or tag."""


class WireFormatError(VPSealError, ValueError):
    """The cipherText wire string is malformed (length, alphabet, padding or part sizes)."""

    api_code = 84


class RequestError(VPSealError):
    """A received request was rejected; ``api_code`` is the code to answer with."""

    api_code: int = 11


class RequestFormatError(RequestError):
    """Missing or malformed header, unknown agent, body not {"cipherText": str}, or a plaintext
    that is not a JSON object (API code 11)."""

    api_code = 11


class SignatureError(RequestError):
    """The x-signature header does not match the request (API code 83)."""

    api_code = 83


class ReplayError(RequestError):
    """The timestamp is outside the window or the nonce was already seen (API code 83)."""

    api_code = 83


class NonceStoreError(RequestError):
    """The replay guard's store (e.g. Redis) could not be consulted, so the request was refused
    rather than risk a replay (API code 7, internal error; the cause is chained)."""

    api_code = 7


class NonceStoreFull(NonceStoreError):
    """The in-memory replay store holds its ``max_entries`` and refuses new requests until
    entries expire, rather than grow without bound or forget a nonce early (API code 7)."""


class DecryptionError(RequestError):
    """The cipherText cannot be decoded or decrypted with the agent's key (API code 84)."""

    api_code = 84


class NativeEngineUnavailable(RuntimeWarning):
    """Warned once at import when the native engine (C over OpenSSL) was expected but could
    not be loaded, so vpseal runs on its pure-Python fallback (2-3x slower). The message says
    why and how to fix it. Setting VPSEAL_BACKEND=fallback chooses the fallback explicitly and
    silences it."""
