"""room-state errors: each one is an RpcError, so its code travels to the edge and on to the API."""

from __future__ import annotations

from parley.bus import ErrorCode, RpcError


class RoomStateError(RpcError):
    """Root of room-state's errors."""


class RoomNotFound(RoomStateError):
    def __init__(self, message: str = "requested room does not exist") -> None:
        super().__init__(ErrorCode.NOT_FOUND, message)


class ParticipantNotFound(RoomStateError):
    def __init__(self, message: str = "participant does not exist") -> None:
        super().__init__(ErrorCode.NOT_FOUND, message)


class TrackNotFound(RoomStateError):
    def __init__(self, message: str = "track is not found") -> None:
        super().__init__(ErrorCode.NOT_FOUND, message)


class RoomFull(RoomStateError):
    def __init__(self, message: str = "room is full") -> None:
        super().__init__(ErrorCode.RESOURCE_EXHAUSTED, message)


class NoNodeAvailable(RoomStateError):
    def __init__(self, message: str = "no SFU node available") -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message)


class InvalidRequest(RoomStateError):
    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_ARGUMENT, message)


class Conflict(RoomStateError):
    """Too many concurrent writers on one room; the caller may retry."""

    def __init__(self, message: str = "room is busy, retry") -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message)
