"""What goes on the wire, exactly as LiveKit sends it (livekit/protocol ``webhook/url_notifier.go``).

The body is the protobuf-JSON of ``livekit.WebhookEvent`` (camelCase, defaults omitted);
``Authorization`` carries the raw JWT (no ``Bearer``) whose ``sha256`` claim is the standard
base64 of SHA-256 over those exact bytes. A body is encoded once per event and the same bytes
are re-signed on every attempt, so a retry carries the same ``id`` and the same body.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from google.protobuf import json_format
from livekit.protocol.webhook import WebhookEvent

from parley.auth import Claims, create_token
from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent

CONTENT_TYPE = "application/webhook+json"
USER_AGENT = "LiveKit"
TOKEN_TTL_SECONDS = 5 * 60

WEBHOOK_EVENTS = frozenset(
    {
        "room_started",
        "room_finished",
        "participant_joined",
        "participant_left",
        "participant_connection_aborted",
        "track_published",
        "track_unpublished",
        "egress_started",
        "egress_updated",
        "egress_ended",
        "ingress_started",
        "ingress_ended",
        "agent_job_started",
        "agent_job_ended",
    }
)
"""Names LiveKit delivers; room-state's internal ones (room_updated, ...) are not webhooks."""


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """One event ready to POST: the exact body and what identifies it."""

    id: str
    event: str
    room: str
    created_at_ms: int
    body: bytes


def is_webhook(event: RoomEvent) -> bool:
    return event.event in WEBHOOK_EVENTS


def to_webhook_event(event: RoomEvent) -> WebhookEvent:
    """The LiveKit message for a room event; the RoomEvent id is the webhook id."""
    out = WebhookEvent(event=event.event, id=event.id, created_at=_created_at_s(event))
    if event.HasField("room"):
        out.room.CopyFrom(event.room)
    if event.HasField("participant"):
        out.participant.CopyFrom(event.participant)
    if event.HasField("track"):
        out.track.CopyFrom(event.track)
    if event.HasField("job"):
        out.job.CopyFrom(event.job)
    if event.HasField("egress_info"):
        out.egress_info.CopyFrom(event.egress_info)
    return out


def encode_body(message: WebhookEvent) -> bytes:
    """protojson: camelCase, defaults omitted, ASCII only (the receivers hash the text they read)."""
    as_dict = json_format.MessageToDict(message, preserving_proto_field_name=False)
    return json.dumps(as_dict, separators=(",", ":"), ensure_ascii=True).encode()


def encode(event: RoomEvent) -> EncodedEvent:
    return EncodedEvent(
        id=event.id,
        event=event.event,
        room=event.room.name,
        created_at_ms=created_at_ms(event),
        body=encode_body(to_webhook_event(event)),
    )


def body_sha256(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def authorization(body: bytes, api_key: str, api_secret: str) -> str:
    """The raw JWT LiveKit puts in ``Authorization``: iss=api_key, 5 min, sha256 of the body."""
    return create_token(api_key, api_secret, Claims(sha256=body_sha256(body)), ttl=TOKEN_TTL_SECONDS)


def headers(body: bytes, api_key: str, api_secret: str) -> dict[str, str]:
    return {
        "Content-Type": CONTENT_TYPE,
        "Authorization": authorization(body, api_key, api_secret),
        "User-Agent": USER_AGENT,
    }


def created_at_ms(event: RoomEvent) -> int:
    return int(event.created_at_ms or event.created_at * 1000)


def _created_at_s(event: RoomEvent) -> int:
    return int(event.created_at or event.created_at_ms // 1000)
