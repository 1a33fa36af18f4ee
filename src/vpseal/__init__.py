"""vpseal: seal and open VP wallet API requests (AES-256-GCM + SHA-256 signatures)."""

from __future__ import annotations

from vpseal._backend import engine as _engine
from vpseal.aead import AesGcm
from vpseal.envelope import (
    Credentials,
    Keyring,
    OpenedRequest,
    SealedRequest,
    open_many,
    open_request,
    seal_many,
    seal_request,
)
from vpseal.errors import (
    ConfigError,
    DecryptionError,
    InvalidTag,
    NativeEngineUnavailable,
    NonceStoreError,
    NonceStoreFull,
    PayloadError,
    ReplayError,
    RequestError,
    RequestFormatError,
    SignatureError,
    VPSealError,
    WireFormatError,
)
from vpseal.keys import parse_api_key
from vpseal.replay import MemoryNonceStore, NonceStore, RedisNonceStore, ReplayGuard
from vpseal.signing import sign, verify_signature
from vpseal.wire import decode_wire, encode_wire

# The one source of the version: pyproject.toml reads it (setuptools dynamic attr), and so do
# `vpseal --version` and the package metadata.
__version__ = "0.1.0"


def backend() -> str:
    """ "native" (C over OpenSSL) or "fallback" (pycryptodome); VPSEAL_BACKEND forces one."""
    return _engine.NAME


def openssl_version() -> str | None:
    """The linked libcrypto's version text, or None on the fallback."""
    return _engine.openssl_version()


__all__ = [
    "AesGcm",
    "ConfigError",
    "Credentials",
    "DecryptionError",
    "InvalidTag",
    "Keyring",
    "MemoryNonceStore",
    "NativeEngineUnavailable",
    "NonceStore",
    "NonceStoreError",
    "NonceStoreFull",
    "OpenedRequest",
    "PayloadError",
    "RedisNonceStore",
    "ReplayError",
    "ReplayGuard",
    "RequestError",
    "RequestFormatError",
    "SealedRequest",
    "SignatureError",
    "VPSealError",
    "WireFormatError",
    "backend",
    "decode_wire",
    "encode_wire",
    "open_many",
    "open_request",
    "openssl_version",
    "parse_api_key",
    "seal_many",
    "seal_request",
    "sign",
    "verify_signature",
]

# --- transport (issue 4) ---
from vpseal.api_errors import (  # noqa: E402
    AgentNotFound,
    APIError,
    Attempt,
    AuthenticationFailed,
    BalanceNotEnough,
    CallContext,
    DeadlineExceeded,
    DecryptionFailed,
    InternalServerError,
    InvalidAccount,
    MemberNotFound,
    OutcomeUnknown,
    ParametersError,
    RateLimited,
    ResponseFormatError,
    TransactionExists,
    TransactionNotFound,
    TransactionPending,
    TransportError,
    WalletLocked,
)
from vpseal.client import AsyncClient, CashoutResult, Client, Transaction  # noqa: E402
from vpseal.tokens import MemoryTokenStore, RedisTokenStore, StoredToken, TokenStore  # noqa: E402

__all__ += [
    "APIError",
    "AgentNotFound",
    "AsyncClient",
    "Attempt",
    "AuthenticationFailed",
    "BalanceNotEnough",
    "CallContext",
    "CashoutResult",
    "Client",
    "DeadlineExceeded",
    "DecryptionFailed",
    "InternalServerError",
    "InvalidAccount",
    "MemberNotFound",
    "MemoryTokenStore",
    "OutcomeUnknown",
    "ParametersError",
    "RateLimited",
    "RedisTokenStore",
    "ResponseFormatError",
    "StoredToken",
    "TokenStore",
    "Transaction",
    "TransactionExists",
    "TransactionNotFound",
    "TransactionPending",
    "TransportError",
    "WalletLocked",
]
