"""Tokens interoperate with livekit-api both ways; every refusal has its own error class."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from livekit import api
from livekit.protocol import models
from livekit.protocol.agent_dispatch import RoomAgentDispatch
from livekit.protocol.room import RoomConfiguration

from parley.auth import (
    LEEWAY_SECONDS,
    AuthError,
    Claims,
    InvalidSignature,
    MalformedToken,
    MissingExpiry,
    MissingToken,
    TokenExpired,
    TokenNotYetValid,
    TokenVerifier,
    UnknownApiKey,
    VideoGrant,
    create_token,
)

pytestmark = pytest.mark.unit

KEY = "APIparley"
SECRET = "a-secret-that-is-long-enough-0123456789"
OTHER_SECRET = "another-secret-that-is-long-enough-9876"


def room_config() -> RoomConfiguration:
    return RoomConfiguration(
        name="ignored-by-join",
        empty_timeout=42,
        departure_timeout=7,
        max_participants=9,
        metadata="room-md",
        agents=[RoomAgentDispatch(agent_name="helper", metadata='{"lang":"fr"}')],
    )


def livekit_token(**grants: Any) -> str:
    video = api.VideoGrants(
        room_create=True,
        room_list=True,
        room_record=True,
        room_admin=True,
        room_join=True,
        room="blue",
        destination_room="green",
        can_publish=False,
        can_subscribe=False,
        can_publish_data=True,
        can_publish_sources=["camera", "screen_share"],
        can_update_own_metadata=True,
        ingress_admin=True,
        hidden=True,
        recorder=True,
        agent=True,
        can_manage_agent_session=True,
        can_subscribe_metrics=True,
    )
    for name, value in grants.items():
        setattr(video, name, value)
    return (
        api.AccessToken(KEY, SECRET)
        .with_identity("alice")
        .with_name("Alice")
        .with_metadata('{"team":"a"}')
        .with_attributes({"role": "host", "lang": "fr"})
        .with_kind("agent")
        .with_sha256("c0ffee")
        .with_room_preset("preset-1")
        .with_room_config(room_config())
        .with_sip_grants(api.SIPGrants(admin=True, call=True))
        .with_agent_grants(api.AgentGrants(admin=True))
        .with_inference_grants(api.InferenceGrants(perform=True))
        .with_observability_grants(api.ObservabilityGrants(write=True))
        .with_grants(video)
        .to_jwt()
    )


def test_livekit_token_verifies_with_every_grant_intact() -> None:
    claims = TokenVerifier({KEY: SECRET}).verify(livekit_token())
    assert claims.api_key == KEY
    assert (claims.identity, claims.name, claims.metadata) == ("alice", "Alice", '{"team":"a"}')
    assert claims.attributes == {"role": "host", "lang": "fr"}
    assert claims.kind == "agent" and claims.participant_kind == models.ParticipantInfo.Kind.AGENT
    assert claims.sha256 == "c0ffee" and claims.room_preset == "preset-1"
    assert claims.room_config == room_config()
    assert claims.room_config.agents[0].agent_name == "helper"
    assert claims.sip == {"admin": True, "call": True}
    assert claims.agent["admin"] is True
    assert claims.inference == {"perform": True}
    assert claims.observability == {"write": True}
    assert claims.video == VideoGrant(
        room_create=True,
        room_list=True,
        room_record=True,
        room_admin=True,
        room_join=True,
        room="blue",
        destination_room="green",
        can_publish=False,
        can_subscribe=False,
        can_publish_data=True,
        can_publish_sources=["camera", "screen_share"],
        can_update_own_metadata=True,
        ingress_admin=True,
        hidden=True,
        recorder=True,
        agent=True,
        can_manage_agent_session=True,
        can_subscribe_metrics=True,
    )
    assert claims.expires_at - claims.not_before == 6 * 3600


def test_livekit_defaults_map_to_livekit_semantics() -> None:
    token = (
        api.AccessToken(KEY, SECRET)
        .with_identity("bob")
        .with_grants(api.VideoGrants(room_join=True, room="r"))
    )
    claims = TokenVerifier({KEY: SECRET}).verify(token.to_jwt())
    assert claims.video.publish and claims.video.subscribe and claims.video.publish_data
    assert not claims.video.flag("room_admin") and not claims.video.flag("hidden")
    assert claims.video.can_publish_sources == []


def test_parley_token_passes_livekit_verifier_with_every_grant_intact() -> None:
    video = VideoGrant(
        room_create=True,
        room_list=True,
        room_record=True,
        room_admin=True,
        room_join=True,
        room="blue",
        destination_room="green",
        can_publish=True,
        can_subscribe=False,
        can_publish_data=False,
        can_publish_sources=["microphone"],
        can_update_own_metadata=True,
        ingress_admin=True,
        hidden=True,
        recorder=True,
        agent=True,
        can_manage_agent_session=True,
        can_subscribe_metrics=True,
    )
    claims = Claims(
        identity="carol",
        name="Carol",
        metadata="md",
        attributes={"k": "v"},
        kind="sip",
        video=video,
        sip={"admin": True, "call": False},
        room_config=room_config(),
        room_preset="p",
        sha256="beef",
    )
    token = create_token(KEY, SECRET, claims, ttl=600)
    got = api.TokenVerifier(KEY, SECRET).verify(token)
    assert (got.identity, got.name, got.metadata, got.kind) == ("carol", "Carol", "md", "sip")
    assert got.attributes == {"k": "v"}
    assert got.sha256 == "beef" and got.room_preset == "p"
    assert got.room_config == room_config()
    assert got.sip == api.SIPGrants(admin=True, call=False)
    assert got.video == api.VideoGrants(
        room_create=True,
        room_list=True,
        room_record=True,
        room_admin=True,
        room_join=True,
        room="blue",
        destination_room="green",
        can_publish=True,
        can_subscribe=False,
        can_publish_data=False,
        can_publish_sources=["microphone"],
        can_update_own_metadata=True,
        ingress_admin=True,
        hidden=True,
        recorder=True,
        agent=True,
        can_manage_agent_session=True,
        can_subscribe_metrics=True,
    )
    payload = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert payload["exp"] - payload["nbf"] == 600 and payload["iss"] == KEY and payload["sub"] == "carol"


def signed(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode({"iss": KEY, "sub": "x", "video": {"roomJoin": True, "room": "r"}, **payload}, secret)


def test_leeway_of_sixty_seconds() -> None:
    assert LEEWAY_SECONDS == 60
    verifier = TokenVerifier({KEY: SECRET})
    now = int(time.time())
    assert verifier.verify(signed({"exp": now - 30})).identity == "x"
    assert verifier.verify(signed({"exp": now + 600, "nbf": now + 30})).identity == "x"
    with pytest.raises(TokenExpired):
        verifier.verify(signed({"exp": now - 90}))
    with pytest.raises(TokenNotYetValid):
        verifier.verify(signed({"exp": now + 600, "nbf": now + 90}))


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (signed({"exp": int(time.time()) - 3600}), TokenExpired),
        (signed({"exp": int(time.time()) + 7200, "nbf": int(time.time()) + 3600}), TokenNotYetValid),
        (jwt.encode({"iss": "nobody", "exp": int(time.time()) + 60}, SECRET), UnknownApiKey),
        (signed({"exp": int(time.time()) + 60}, OTHER_SECRET), InvalidSignature),
        ("not-a-jwt", MalformedToken),
        ("a.b.c", MalformedToken),
        (signed({"exp": int(time.time()) + 60, "video": "everything"}), MalformedToken),
        (signed({}), MissingExpiry),
        ("", MissingToken),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "unknown-key",
        "wrong-secret",
        "garbage",
        "bad-segments",
        "bad-video",
        "missing-exp",
        "empty",
    ],
)
def test_refusals(token: str, error: type[AuthError]) -> None:
    with pytest.raises(error) as caught:
        TokenVerifier({KEY: SECRET}).verify(token)
    assert type(caught.value) is error
    assert caught.value.status == 401


def test_refusal_classes_are_distinct() -> None:
    classes = [TokenExpired, TokenNotYetValid, UnknownApiKey, InvalidSignature, MalformedToken, MissingExpiry]
    for cls in classes:
        assert issubclass(cls, AuthError)
        assert not any(issubclass(cls, other) for other in classes if other is not cls)
