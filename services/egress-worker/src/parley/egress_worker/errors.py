"""The egress worker's errors; ``http_code`` is what EgressInfo.error_code gets when one ends a job."""

from __future__ import annotations


class EgressWorkerError(Exception):
    """Base of the worker's errors."""

    http_code = 500

    def __init__(self, message: str, http_code: int | None = None) -> None:
        super().__init__(message)
        if http_code is not None:
            self.http_code = http_code


class UnsupportedRequest(EgressWorkerError):
    """A request this worker cannot run (refused with invalid_argument, LiveKit's wording)."""

    http_code = 400


class StorageError(EgressWorkerError):
    """An upload failed (the egress ends FAILED with this message)."""


class SourceError(EgressWorkerError):
    """The track cannot be tapped (unknown track or room, the node refused, no media)."""
