"""Egress errors: each one is an RpcError, so its code and LiveKit's message reach the API."""

from __future__ import annotations

from parley.bus import ErrorCode, RpcError


class EgressError(RpcError):
    """Root of the egress controller's errors."""


class EgressNotFound(EgressError):
    def __init__(self) -> None:
        super().__init__(ErrorCode.NOT_FOUND, "egress does not exist")


class RoomNotFound(EgressError):
    def __init__(self) -> None:
        super().__init__(ErrorCode.NOT_FOUND, "requested room does not exist")


class NoWorker(EgressError):
    """No worker accepted the job (LiveKit's psrpc answer when no egress instance bids)."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.UNAVAILABLE, "no response from servers")


class RequestTimedOut(EgressError):
    """StopEgress whose worker did not answer (LiveKit maps psrpc's no-response to this, not to 503)."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.DEADLINE_EXCEEDED, "request timed out")


class InvalidRequest(EgressError):
    def __init__(self, field: str) -> None:
        super().__init__(ErrorCode.INVALID_ARGUMENT, f"request has missing or invalid field: {field}")


class CannotStop(EgressError):
    def __init__(self, status: str) -> None:
        super().__init__(ErrorCode.FAILED_PRECONDITION, f"egress with status {status} cannot be stopped")


class CannotUpdate(EgressError):
    def __init__(self, status: str) -> None:
        super().__init__(ErrorCode.FAILED_PRECONDITION, f"egress with status {status} cannot be updated")


class NotStreaming(EgressError):
    def __init__(self) -> None:
        super().__init__(ErrorCode.INVALID_ARGUMENT, "UpdateStream called on non-streaming egress")


class StreamNotFound(EgressError):
    def __init__(self, url: str) -> None:
        super().__init__(ErrorCode.NOT_FOUND, f"stream {url} not found")


class Conflict(EgressError):
    """Too many concurrent writers on one record; the caller may retry."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.UNAVAILABLE, "egress is busy, retry")
