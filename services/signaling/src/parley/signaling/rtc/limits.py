"""Limits on client frames that the edge applies before relaying them to the SFU node.

Oversized requests never reach the bus (NATS refuses payloads above ``max_payload``, 1 MiB by
default, so they used to vanish with a warning): the edge answers them itself, as LiveKit does,
with a ``request_response`` (``LIMIT_EXCEEDED``) or, for a request kind without one, closes the
connection with 1009 and a reason. The SFU checks its own (configurable, possibly stricter) limits
on what passes.

Empty frames (a SignalRequest with no message) are ignored while they stay rare; an abusive burst
closes the connection with 1008 (policy violation) and a reason. See ``EmptyFrameGuard``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from livekit.protocol import rtc

from parley.auth import Claims
from parley.signaling.api.limits import (
    MAX_ATTRIBUTES_BYTES,
    MAX_IDENTITY_BYTES,
    MAX_METADATA_BYTES,
    MAX_ROOM_NAME_BYTES,
)

MAX_NAME_BYTES = 256
"""LiveKit ``limit.max_participant_name_length``; also applied to track names."""
MAX_RELAYED_BYTES = 1024 * 1024 - 16 * 1024
"""Largest client frame relayed to the SFU: NATS' default ``max_payload`` (1 MiB) minus room for
the ClientSignal envelope and headers."""

CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009

Reason = rtc.RequestResponse.Reason


def _size(text: str) -> int:
    return len(text.encode())


def _metadata_breach(update: rtc.UpdateParticipantMetadata) -> str | None:
    """LiveKit's messages (``CheckMetadataLimits``), or None when the update fits."""
    if _size(update.name) > MAX_NAME_BYTES:
        return "exceeds name length limit"
    if _size(update.metadata) > MAX_METADATA_BYTES:
        return "exceeds metadata size limit"
    if sum(_size(k) + _size(v) for k, v in update.attributes.items()) > MAX_ATTRIBUTES_BYTES:
        return "exceeds attributes size limit"
    return None


def join_breach(claims: Claims) -> str | None:
    """Why a join token's room, identity, name, metadata or attributes are over LiveKit's limits
    (answered 400 before the upgrade, as LiveKit's ``validateInternal`` does), or None."""
    if _size(claims.video.room) > MAX_ROOM_NAME_BYTES:
        return f"room name length exceeds limits: max length {MAX_ROOM_NAME_BYTES} bytes"
    if _size(claims.identity) > MAX_IDENTITY_BYTES:
        return f"participant identity length exceeds limits: max length {MAX_IDENTITY_BYTES} bytes"
    if _size(claims.name) > MAX_NAME_BYTES:
        return f"participant name length exceeds limits: max length {MAX_NAME_BYTES} bytes"
    if _size(claims.metadata) > MAX_METADATA_BYTES:
        return f"metadata size exceeds limits: max size {MAX_METADATA_BYTES} bytes"
    if sum(_size(k) + _size(v) for k, v in claims.attributes.items()) > MAX_ATTRIBUTES_BYTES:
        return f"attributes size exceeds limits: max size {MAX_ATTRIBUTES_BYTES} bytes"
    return None


def refusal(request: rtc.SignalRequest) -> rtc.RequestResponse | None:
    """The ``request_response`` that answers a request over LiveKit's limits, or None.

    The echoed request keeps its identifiers (request_id, cid, type, source) but not the oversized
    fields: the client matches on those and needs no megabyte sent back.
    """
    kind = request.WhichOneof("message")
    if kind == "update_metadata":
        update = request.update_metadata
        message = _metadata_breach(update)
        if message is None:
            return None
        return rtc.RequestResponse(
            request_id=update.request_id,
            reason=Reason.LIMIT_EXCEEDED,
            message=message,
            update_metadata=rtc.UpdateParticipantMetadata(request_id=update.request_id),
        )
    if kind == "add_track":
        add = request.add_track
        if _size(add.name) <= MAX_NAME_BYTES:
            return None
        echo = rtc.AddTrackRequest(cid=add.cid, type=add.type, source=add.source)
        return rtc.RequestResponse(
            reason=Reason.LIMIT_EXCEEDED, message="exceeds track name length limit", add_track=echo
        )
    return None


def too_large(data: bytes) -> bool:
    """A frame the relay cannot carry (answered by closing with 1009)."""
    return len(data) > MAX_RELAYED_BYTES


@dataclass(slots=True)
class EmptyFrameGuard:
    """A token bucket for empty frames: ``burst`` of them are ignored at once, refilled at
    ``per_second``; ``allow`` is False once a client exceeds that (the edge then closes).

    Some clients send an empty SignalRequest now and then (a keepalive of their own, a version
    mismatch): a few are harmless. Hundreds in a burst are abuse and cost a parse and a log each.
    """

    burst: float = 20.0
    per_second: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(default=-1.0, init=False)
    _last: float = field(default=0.0, init=False)

    def allow(self) -> bool:
        now = self.clock()
        if self._tokens < 0:
            self._tokens = self.burst
        else:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
