"""The access token an agent joins its job's room with (livekit/protocol agent/token.go)."""

from __future__ import annotations

from livekit.protocol import agent, models

from parley.auth import Claims, VideoGrant, create_token

AGENT_NAME_ATTRIBUTE = "lk.agent.name"


def participant_identity(job: agent.Job, answer: agent.AvailabilityResponse) -> str:
    return answer.participant_identity or f"agent-{job.id}"


def agent_token(
    job: agent.Job,
    answer: agent.AvailabilityResponse,
    permission: models.ParticipantPermission,
    api_key: str,
    api_secret: str,
    ttl: int,
) -> str:
    attributes = dict(answer.participant_attributes)
    attributes[AGENT_NAME_ATTRIBUTE] = job.agent_name
    video = VideoGrant(
        room_join=True,
        room=job.room.name,
        agent=True,
        can_publish=permission.can_publish,
        can_subscribe=permission.can_subscribe,
        can_publish_data=permission.can_publish_data,
        can_update_own_metadata=permission.can_update_metadata,
        hidden=permission.hidden,
        can_publish_sources=[_SOURCE_NAMES[s] for s in permission.can_publish_sources if s in _SOURCE_NAMES],
    )
    claims = Claims(
        identity=participant_identity(job, answer),
        name=answer.participant_name,
        metadata=answer.participant_metadata,
        attributes=attributes,
        kind="agent",
        video=video,
    )
    return create_token(api_key, api_secret, claims, ttl=ttl)


_SOURCE_NAMES = {
    models.TrackSource.CAMERA: "camera",
    models.TrackSource.MICROPHONE: "microphone",
    models.TrackSource.SCREEN_SHARE: "screen_share",
    models.TrackSource.SCREEN_SHARE_AUDIO: "screen_share_audio",
}
