"""Errors of the VP API client: one class per API code (SPEC.md section 6), raised when *the API
answered* a call of yours, plus the failures that have no API code (no answer, an answer that
is not the envelope, an unknown outcome). Opening a request yourself raises
``vpseal.RequestError`` subclasses instead (see vpseal.errors).

The code decides what a caller may do next, so each code is its own class; an unknown code still
raises the base ``APIError``. Messages carry the server's message, code and logUUID only: never
a key, secret, token or plaintext.
"""

from __future__ import annotations

from typing import NamedTuple

from vpseal.errors import VPSealError


class Attempt(NamedTuple):
    """One request a client call made: what a support ticket needs (never a secret).
    ``status``: HTTP status (None: no answer); ``code``: the API code (None: no envelope)."""

    path: str
    status: int | None
    code: int | None
    log_uuid: str | None
    elapsed: float
    error: str | None = None


class CallContext:
    """What the client adds to an error it raises: the transId of the call (if it has one),
    the HTTP status of the last answer, and every attempt made, in order."""

    trans_id: str | None = None
    http_status: int | None = None
    attempts: tuple[Attempt, ...] = ()


class APIError(CallContext, VPSealError):
    """The API answered with a non-zero ``code``."""

    code: int = -1
    default_message: str = "API error"

    def __init__(
        self, message: str | None = None, *, code: int | None = None, log_uuid: str | None = None
    ) -> None:
        self.code = type(self).code if code is None else code
        self.api_code = self.code
        self.message = type(self).default_message if message is None else message
        self.log_uuid = log_uuid
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} (code {self.code}, logUUID {self.log_uuid or '-'})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"log_uuid={self.log_uuid!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:  # keep code/log_uuid across pickling
        return (_rebuild, (type(self), self.message, self.code, self.log_uuid))


def _rebuild(cls: type[APIError], message: str, code: int, log_uuid: str | None) -> APIError:
    return cls(message, code=code, log_uuid=log_uuid)


class BalanceNotEnough(APIError):
    """Code 2: the member's balance is zero (nothing to cash out)."""

    code = 2
    default_message = "The balance is not enough."


class TransactionExists(APIError):
    """Code 3: the transId was already used."""

    code = 3
    default_message = "The transaction already exist."


class TransactionNotFound(APIError):
    """Code 4: no transaction with this transId (for this member)."""

    code = 4
    default_message = "The transaction doesn't exist."


class InternalServerError(APIError):
    """Code 7: the server failed; the outcome of a write is not known from this answer."""

    code = 7
    default_message = "Internal server error"


class MemberNotFound(APIError):
    """Code 8: no such member under this agent."""

    code = 8
    default_message = "The member does not exist."


class AgentNotFound(APIError):
    """Code 10: the agent id is unknown or blocked (from /v2/auth)."""

    code = 10
    default_message = "Agent code was not found or block"


class ParametersError(APIError):
    """Code 11: a field is missing or invalid."""

    code = 11
    default_message = "Parameters error"


class InvalidAccount(APIError):
    """Code 19: the member account cannot be used (e.g. blocked)."""

    code = 19
    default_message = "Invalid account"


class WalletLocked(APIError):
    """Code 20: another operation on the wallet is in flight; retry with the same transId."""

    code = 20
    default_message = "Member wallet is temporarily locked, please try again later."


class TransactionPending(APIError):
    """Code 35: the transaction is not final yet; its final state comes from the query."""

    code = 35
    default_message = "The transaction is pending"


class AuthenticationFailed(APIError):
    """Code 83: bad or expired token, bad signature, or a replayed request."""

    code = 83
    default_message = "Authentication Failed"


class DecryptionFailed(APIError):
    """Code 84: the server could not decrypt the cipherText (wrong API KEY?)."""

    code = 84
    default_message = "Decryption Failed"


ERRORS_BY_CODE: dict[int, type[APIError]] = {
    cls.code: cls
    for cls in (
        BalanceNotEnough,
        TransactionExists,
        TransactionNotFound,
        InternalServerError,
        MemberNotFound,
        AgentNotFound,
        ParametersError,
        InvalidAccount,
        WalletLocked,
        TransactionPending,
        AuthenticationFailed,
        DecryptionFailed,
    )
}

MESSAGES: dict[int, str] = {0: "No error."} | {
    code: cls.default_message for code, cls in ERRORS_BY_CODE.items()
}


def from_response(code: int, message: str | None, log_uuid: str | None) -> APIError:
    """The exception for an envelope's non-zero code (plain APIError for an unknown code)."""
    cls = ERRORS_BY_CODE.get(code, APIError)
    return cls(message, code=code, log_uuid=log_uuid)


class TransportError(CallContext, VPSealError):
    """No answer was received: connection refused or dropped, timeout, HTTP 5xx, or retries
    exhausted before any answer. For a cash-out this is raised only when no attempt can have
    reached the server; otherwise the client raises OutcomeUnknown."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class RateLimited(TransportError):
    """HTTP 429 until the retries ran out; ``retry_after``: the server's last ``Retry-After``
    in seconds (None if it sent none). Rate limiting refuses a request before applying it."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, http_status=429)
        self.retry_after = retry_after


class DeadlineExceeded(TransportError):
    """The call's deadline passed before an answer settled it (for a cash-out that may have
    been applied, the client raises OutcomeUnknown instead)."""


class ResponseFormatError(CallContext, VPSealError):
    """The server answered, but not with the documented JSON envelope (or with data lacking a
    documented field, or a value out of range)."""

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class OutcomeUnknown(CallContext, VPSealError):
    """A cash-out may or may not have happened and retries could not settle it.

    Nothing is lost: call ``check_transaction(username, trans_id)`` later, or repeat
    ``cashout(username, trans_id=trans_id)``: the same transId never cashes out twice.
    """

    trans_id: str

    def __init__(self, trans_id: str, reason: str) -> None:
        self.trans_id = trans_id
        self.reason = reason
        super().__init__(f"outcome of cash-out {trans_id!r} is unknown: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.trans_id, self.reason))


__all__ = [
    "ERRORS_BY_CODE",
    "MESSAGES",
    "APIError",
    "AgentNotFound",
    "Attempt",
    "AuthenticationFailed",
    "BalanceNotEnough",
    "CallContext",
    "DeadlineExceeded",
    "DecryptionFailed",
    "InternalServerError",
    "InvalidAccount",
    "MemberNotFound",
    "OutcomeUnknown",
    "ParametersError",
    "RateLimited",
    "ResponseFormatError",
    "TransactionExists",
    "TransactionNotFound",
    "TransactionPending",
    "TransportError",
    "WalletLocked",
    "from_response",
]
