"""API errors and how each wire shows them: Twirp code + HTTP status, gRPC status."""

from __future__ import annotations

import grpc

from parley.auth import AuthError
from parley.bus import BusError

TWIRP_STATUS: dict[str, int] = {
    "canceled": 408,
    "unknown": 500,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
}

GRPC_STATUS: dict[str, grpc.StatusCode] = {
    "canceled": grpc.StatusCode.CANCELLED,
    "unknown": grpc.StatusCode.UNKNOWN,
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "malformed": grpc.StatusCode.INVALID_ARGUMENT,
    "deadline_exceeded": grpc.StatusCode.DEADLINE_EXCEEDED,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "bad_route": grpc.StatusCode.UNIMPLEMENTED,
    "already_exists": grpc.StatusCode.ALREADY_EXISTS,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "resource_exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION,
    "aborted": grpc.StatusCode.ABORTED,
    "out_of_range": grpc.StatusCode.OUT_OF_RANGE,
    "unimplemented": grpc.StatusCode.UNIMPLEMENTED,
    "internal": grpc.StatusCode.INTERNAL,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "dataloss": grpc.StatusCode.DATA_LOSS,
}


class ApiError(Exception):
    """Raise from an API handler to answer with a code (Twirp code names)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return TWIRP_STATUS.get(self.code, 500)

    @property
    def grpc_status(self) -> grpc.StatusCode:
        return GRPC_STATUS.get(self.code, grpc.StatusCode.UNKNOWN)


def invalid(message: str) -> ApiError:
    return ApiError("invalid_argument", message)


def permission_denied() -> ApiError:
    """LiveKit answers a missing grant with unauthenticated ("permissions denied")."""
    return ApiError("unauthenticated", "permissions denied")


def to_api_error(exc: BaseException) -> ApiError:
    """Any handler failure as an ApiError: codes from auth and bus errors pass through."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AuthError):
        return ApiError(exc.code, str(exc) or "unauthenticated")
    if isinstance(exc, BusError):
        message = getattr(exc, "message", None) or str(exc)
        return ApiError(str(exc.code), message)
    return ApiError("internal", f"{type(exc).__name__}: {exc}")
