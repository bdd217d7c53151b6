"""Unit: the wire format (body bytes, headers, token) and the retry policy."""

from __future__ import annotations

import base64
import hashlib
import json
import random

import jwt
import pytest
from livekit import api as lkapi
from livekit.protocol import models as lk_models

from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent
from parley.webhook import wire
from parley.webhook.backoff import Backoff
from parley.webhook.config import WebhookServiceConfig

pytestmark = pytest.mark.unit

KEY, SECRET = "key", "s" * 40


def _event(name: str = "participant_joined") -> RoomEvent:
    return RoomEvent(
        id="EV_abc",
        event=name,
        created_at=1_700_000_000,
        created_at_ms=1_700_000_000_123,
        room_sequence=3,
        room=lk_models.Room(sid="RM_x", name="réunion"),
        participant=lk_models.ParticipantInfo(sid="PA_x", identity="alice"),
        node_id="SFU_1",
    )


def test_body_is_camel_case_protojson_without_defaults() -> None:
    encoded = wire.encode(_event())
    body = json.loads(encoded.body)
    assert body == {
        "event": "participant_joined",
        "id": "EV_abc",
        "createdAt": "1700000000",
        "room": {"sid": "RM_x", "name": "réunion"},
        "participant": {"sid": "PA_x", "identity": "alice"},
    }
    assert encoded.body.isascii()
    assert (encoded.id, encoded.room, encoded.created_at_ms) == ("EV_abc", "réunion", 1_700_000_000_123)


def test_headers_verify_with_the_official_python_receiver() -> None:
    body = wire.encode(_event()).body
    headers = wire.headers(body, KEY, SECRET)
    assert headers["Content-Type"] == "application/webhook+json"
    assert headers["User-Agent"] == "LiveKit"
    assert not headers["Authorization"].startswith("Bearer")
    claims = jwt.decode(headers["Authorization"], SECRET, algorithms=["HS256"], issuer=KEY)
    assert claims["sha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert 290 <= claims["exp"] - claims["nbf"] <= 310
    received = lkapi.WebhookReceiver(lkapi.TokenVerifier(KEY, SECRET)).receive(
        body.decode(), headers["Authorization"]
    )
    assert received.participant.identity == "alice"
    with pytest.raises(Exception, match="hash mismatch"):
        lkapi.WebhookReceiver(lkapi.TokenVerifier(KEY, SECRET)).receive(
            body.decode().replace("alice", "mallory"), headers["Authorization"]
        )


def test_only_webhook_names_are_delivered() -> None:
    assert wire.is_webhook(_event("room_started"))
    assert wire.is_webhook(_event("agent_job_ended"))
    for internal in ("room_updated", "participant_updated", "track_updated", "participant_connected"):
        assert not wire.is_webhook(_event(internal))


def test_backoff_grows_with_jitter_within_bounds() -> None:
    policy = Backoff(0.5, 30.0)
    rng = random.Random(7)
    delays = [[policy.delay(a, rng) for _ in range(200)] for a in range(1, 12)]
    for series in delays:
        assert all(0.5 <= d <= 30.0 for d in series)
    assert max(delays[0]) <= 0.5 + 1e-9
    assert min(delays[4]) >= 4.0 and max(delays[4]) <= 8.0  # step 8 s: between half and full
    assert len({round(d, 3) for d in delays[10]}) > 50  # jittered, not synchronized
    assert max(delays[10]) <= 30.0 and min(delays[10]) >= 15.0


def test_ack_wait_must_leave_room_for_the_lease() -> None:
    with pytest.raises(ValueError, match="ack_wait"):
        WebhookServiceConfig.model_validate({"webhook_service": {"lease_ttl": 3.0, "ack_wait": 2.5}})
    ok = WebhookServiceConfig.model_validate({"webhook_service": {"lease_ttl": 3.0, "ack_wait": 1.5}})
    assert ok.webhook_service.renew_interval == 1.0
