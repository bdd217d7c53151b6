"""turn-alloc errors; each maps to a bus RPC code."""

from __future__ import annotations

from parley.bus import ErrorCode, RpcError


class TurnAllocError(RpcError):
    """Root of turn-alloc's errors."""


class QuotaExceeded(TurnAllocError):
    """The participant already holds its maximum of live TURN credentials."""

    def __init__(self, participant: str, limit: int) -> None:
        super().__init__(
            ErrorCode.RESOURCE_EXHAUSTED,
            f"participant {participant!r} already holds {limit} live TURN credentials",
        )
