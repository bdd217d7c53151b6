"""Participant record changes: update_metadata from the client, UpdateParticipant from the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from livekit.protocol import models, rtc

from parley.protocol.participant_fields import apply_fields
from parley.sfu import publish, subscriptions
from parley.sfu.participant import Participant

if TYPE_CHECKING:
    from parley.sfu.room import Room

Reason = rtc.RequestResponse.Reason

MAX_NAME_BYTES = 256
"""LiveKit ``limit.max_participant_name_length``."""


def limit_breach(room: Room, request: rtc.UpdateParticipantMetadata) -> str | None:
    """LiveKit's message for the first limit the update breaks (CheckMetadataLimits), or None."""
    limits = room.host.config.sfu
    if len(request.name.encode()) > MAX_NAME_BYTES:
        return "exceeds name length limit"
    if len(request.metadata.encode()) > limits.max_metadata_bytes:
        return "exceeds metadata size limit"
    if (
        sum(len(k.encode()) + len(v.encode()) for k, v in request.attributes.items())
        > limits.max_attributes_bytes
    ):
        return "exceeds attributes size limit"
    return None


def publish_change(room: Room, p: Participant, *, version: int = 0) -> None:
    """Tell everyone; ``version``: room-state's, for a RoomCommand's change (see ``Participant.bump``)."""
    p.bump(version)
    room.broadcast_update(p)


def report_fields(
    room: Room, p: Participant, *, name: str, metadata: str, attributes: Mapping[str, str]
) -> None:
    """The delta to room-state, which owns the record: a command's own change coming back changes
    nothing there (no version, no event); it keeps both in step when the client's own update of
    the same fields was still on its way."""
    room.reporter.participant_updated(room.name, p.sid, name=name, metadata=metadata, attributes=attributes)


def update_own(room: Room, p: Participant, request: rtc.UpdateParticipantMetadata) -> None:
    """Always answered with request_response; the update goes to everyone, the sender included."""
    message = ""
    breach = limit_breach(room, request)
    if not p.permission.can_update_metadata:
        reason, message = Reason.NOT_ALLOWED, "does not have permission to update own metadata"
    elif breach is not None:
        reason, message = Reason.LIMIT_EXCEEDED, breach
    else:
        reason = Reason.OK
        if apply_fields(p.info, name=request.name, metadata=request.metadata, attributes=request.attributes):
            publish_change(room, p)
            report_fields(
                room, p, name=request.name, metadata=request.metadata, attributes=request.attributes
            )
    p.send(
        rtc.SignalResponse(
            request_response=rtc.RequestResponse(
                request_id=request.request_id,
                reason=reason,  # type: ignore[arg-type]
                message=message,
                update_metadata=request,
            )
        )
    )


def apply_permission(room: Room, p: Participant, permission: models.ParticipantPermission) -> None:
    """Permission changes take effect now: revoked publishing unpublishes, subscribing reconciles."""
    p.info.permission.CopyFrom(permission)
    for sid, track in list(p.published.items()):
        if not publish.source_allowed(permission, track.info.source):
            publish.unpublish(room, p, sid)
    for cid, info in list(p.pending.items()):
        if not publish.source_allowed(permission, info.source):
            del p.pending[cid]
    subscriptions.reconcile(room, p)
