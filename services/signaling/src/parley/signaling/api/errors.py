"""API errors; how each wire shows a code (HTTP status, gRPC status) is ``parley.bus.status``."""

from __future__ import annotations

import grpc

from parley.auth import AuthError
from parley.bus import BusError
from parley.bus.status import wire_status


class ApiError(Exception):
    """Raise from an API handler to answer with a code (Twirp code names)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return wire_status(self.code).http

    @property
    def grpc_status(self) -> grpc.StatusCode:
        return grpc.StatusCode[wire_status(self.code).grpc]


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
