"""Participant record changes: update_metadata from the client, UpdateParticipant from the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from livekit.protocol import models, rtc

from parley.sfu import publish, subscriptions
from parley.sfu.participant import Participant

if TYPE_CHECKING:
    from parley.sfu.room import Room

Reason = rtc.RequestResponse.Reason


def apply_fields(p: Participant, *, name: str, metadata: str, attributes: Mapping[str, str]) -> bool:
    """Non-empty name/metadata replace; attributes merge, an empty value deletes the key."""
    changed = False
    if name and name != p.info.name:
        p.info.name = name
        changed = True
    if metadata and metadata != p.info.metadata:
        p.info.metadata = metadata
        changed = True
    for key, value in attributes.items():
        if not value:
            if key in p.info.attributes:
                del p.info.attributes[key]
                changed = True
        elif p.info.attributes.get(key) != value:
            p.info.attributes[key] = value
            changed = True
    return changed


def _too_big(room: Room, request: rtc.UpdateParticipantMetadata) -> bool:
    limits = room.host.config.sfu
    attrs = sum(len(k) + len(v) for k, v in request.attributes.items())
    return len(request.metadata.encode()) > limits.max_metadata_bytes or attrs > limits.max_attributes_bytes


def publish_change(room: Room, p: Participant) -> None:
    p.bump()
    room.broadcast_update(p)
    room.reporter.participant_updated(room.name, p.info)


def update_own(room: Room, p: Participant, request: rtc.UpdateParticipantMetadata) -> None:
    """Always answered with request_response; the update goes to everyone, the sender included."""
    if not p.permission.can_update_metadata:
        reason = Reason.NOT_ALLOWED
    elif _too_big(room, request):
        reason = Reason.LIMIT_EXCEEDED
    else:
        reason = Reason.OK
        if apply_fields(p, name=request.name, metadata=request.metadata, attributes=request.attributes):
            publish_change(room, p)
    p.send(
        rtc.SignalResponse(
            request_response=rtc.RequestResponse(
                request_id=request.request_id,
                reason=reason,  # type: ignore[arg-type]
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
