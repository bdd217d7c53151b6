"""Bus errors. An RPC error carries a Twirp-style code that maps to every wire."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Codes shared by RPC replies, Twirp errors and gRPC statuses."""

    INVALID_ARGUMENT = "invalid_argument"
    MALFORMED = "malformed"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    PERMISSION_DENIED = "permission_denied"
    UNAUTHENTICATED = "unauthenticated"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    FAILED_PRECONDITION = "failed_precondition"
    UNIMPLEMENTED = "unimplemented"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    INTERNAL = "internal"


RETRYABLE = {ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED}


class BusError(Exception):
    """Root of every bus error."""

    code: ErrorCode = ErrorCode.INTERNAL

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE


class RpcError(BusError):
    """The responder answered with an error; raise it from a handler to answer with one."""

    def __init__(self, code: ErrorCode | str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = ErrorCode(code) if code in ErrorCode._value2member_map_ else ErrorCode.INTERNAL
        self.message = message


class RpcTimeout(BusError):
    """No answer within the timeout."""

    code = ErrorCode.DEADLINE_EXCEEDED


class NoResponders(BusError):
    """Nobody serves that subject."""

    code = ErrorCode.UNAVAILABLE
