"""LiveKit-compatible grants and claims (livekit/protocol auth/grants.go)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from google.protobuf import json_format
from livekit.protocol import models
from livekit.protocol.room import RoomConfiguration

SOURCES = ("camera", "microphone", "screen_share", "screen_share_audio")

_KIND_BY_NAME: dict[str, models.ParticipantInfo.Kind] = {
    "standard": models.ParticipantInfo.Kind.STANDARD,
    "ingress": models.ParticipantInfo.Kind.INGRESS,
    "egress": models.ParticipantInfo.Kind.EGRESS,
    "sip": models.ParticipantInfo.Kind.SIP,
    "agent": models.ParticipantInfo.Kind.AGENT,
    "connector": getattr(models.ParticipantInfo.Kind, "CONNECTOR", models.ParticipantInfo.Kind.STANDARD),
    "bridge": getattr(models.ParticipantInfo.Kind, "BRIDGE", models.ParticipantInfo.Kind.STANDARD),
}

_SOURCE_ENUM = {
    "camera": models.TrackSource.CAMERA,
    "microphone": models.TrackSource.MICROPHONE,
    "screen_share": models.TrackSource.SCREEN_SHARE,
    "screen_share_audio": models.TrackSource.SCREEN_SHARE_AUDIO,
}


@dataclass(slots=True)
class VideoGrant:
    """The ``video`` claim. ``None`` means absent: the getters apply LiveKit's defaults."""

    room_create: bool | None = None
    room_list: bool | None = None
    room_record: bool | None = None
    room_admin: bool | None = None
    room_join: bool | None = None
    room: str = ""
    destination_room: str = ""
    can_publish: bool | None = None
    can_subscribe: bool | None = None
    can_publish_data: bool | None = None
    can_publish_sources: list[str] = field(default_factory=list)
    can_update_own_metadata: bool | None = None
    ingress_admin: bool | None = None
    hidden: bool | None = None
    recorder: bool | None = None
    agent: bool | None = None
    can_subscribe_metrics: bool | None = None
    can_manage_agent_session: bool | None = None

    @property
    def publish(self) -> bool:
        return True if self.can_publish is None else self.can_publish

    @property
    def subscribe(self) -> bool:
        return True if self.can_subscribe is None else self.can_subscribe

    @property
    def publish_data(self) -> bool:
        return self.publish if self.can_publish_data is None else self.can_publish_data

    def flag(self, name: str) -> bool:
        """A false-by-default flag such as ``room_admin``."""
        value = getattr(self, name)
        return bool(value)

    def to_permission(self) -> models.ParticipantPermission:
        """ParticipantInfo.permission, as LiveKit derives it from the grant."""
        return models.ParticipantPermission(
            can_subscribe=self.subscribe,
            can_publish=self.publish,
            can_publish_data=self.publish_data,
            can_publish_sources=[_SOURCE_ENUM[s] for s in self.can_publish_sources if s in _SOURCE_ENUM],
            hidden=self.flag("hidden"),
            recorder=self.flag("recorder"),
            can_update_metadata=self.flag("can_update_own_metadata"),
            agent=self.flag("agent"),
            can_subscribe_metrics=self.flag("can_subscribe_metrics"),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == "" or value == []:
                continue
            out[_camel(f.name)] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VideoGrant:
        grant = cls()
        for f in fields(cls):
            key = _camel(f.name)
            if key not in data:
                continue
            value = data[key]
            if f.name == "can_publish_sources":
                grant.can_publish_sources = [str(s) for s in value or []]
            elif f.name in ("room", "destination_room"):
                grant.__setattr__(f.name, str(value or ""))
            else:
                grant.__setattr__(f.name, bool(value))
        return grant


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(slots=True)
class Claims:
    """Every claim of a LiveKit access token."""

    api_key: str = ""
    identity: str = ""
    name: str = ""
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    kind: str = ""
    kind_details: list[str] = field(default_factory=list)
    video: VideoGrant = field(default_factory=VideoGrant)
    sip: dict[str, Any] = field(default_factory=dict)
    agent: dict[str, Any] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)
    observability: dict[str, Any] = field(default_factory=dict)
    room_config: RoomConfiguration | None = None
    room_preset: str = ""
    sha256: str = ""
    not_before: int = 0
    expires_at: int = 0
    issued_at: int = 0
    jwt_id: str = ""

    @property
    def participant_kind(self) -> models.ParticipantInfo.Kind:
        """Upper-cased ``kind``; unknown values are STANDARD."""
        return _KIND_BY_NAME.get(self.kind.lower(), models.ParticipantInfo.Kind.STANDARD)

    @property
    def is_dependent(self) -> bool:
        """Agents, egress and recorders never keep a room open."""
        kind = self.participant_kind
        return (
            kind in (models.ParticipantInfo.Kind.AGENT, models.ParticipantInfo.Kind.EGRESS)
            or self.video.flag("agent")
            or self.video.flag("recorder")
        )

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"iss": self.api_key, "sub": self.identity, "video": self.video.to_json()}
        optional: dict[str, Any] = {
            "name": self.name,
            "metadata": self.metadata,
            "attributes": self.attributes,
            "kind": self.kind,
            "kindDetails": self.kind_details,
            "sip": self.sip,
            "agent": self.agent,
            "inference": self.inference,
            "observability": self.observability,
            "roomPreset": self.room_preset,
            "sha256": self.sha256,
            "jti": self.jwt_id,
        }
        payload.update({k: v for k, v in optional.items() if v})
        if self.room_config is not None:
            payload["roomConfig"] = json_format.MessageToDict(self.room_config)
        if self.not_before:
            payload["nbf"] = self.not_before
        if self.expires_at:
            payload["exp"] = self.expires_at
        if self.issued_at:
            payload["iat"] = self.issued_at
        return payload
