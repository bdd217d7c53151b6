"""Errors of the /rtc edge: each carries the plain HTTP status and body LiveKit answers with."""

from __future__ import annotations


class RtcError(Exception):
    """A refusal before the WebSocket upgrade (plain-text body)."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class Unauthorized(RtcError):
    status = 401


class BadRequest(RtcError):
    status = 400


class RoomNotFound(RtcError):
    status = 404

    def __init__(self, message: str = "requested room does not exist") -> None:
        super().__init__(message)


class Unavailable(RtcError):
    status = 503
