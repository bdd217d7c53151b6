"""Golden: an egress event (as the egress controller stores it in PARLEY_EVENTS) becomes LiveKit's
WebhookEvent with ``egressInfo``, byte for byte, and the official receiver reads it back."""

from __future__ import annotations

import pytest
from livekit import api as lkapi
from livekit.protocol import egress as lk
from livekit.protocol import models as lk_models

from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent
from parley.webhook import wire

pytestmark = pytest.mark.unit

KEY, SECRET = "key", "s" * 40

GOLDEN = (
    b'{"event":"egress_started","room":{"sid":"RM_x","name":"r1"},"id":"EV_eg1","createdAt":"1700000000",'
    b'"egressInfo":{"egressId":"EG_abcdefghijkl","roomId":"RM_x","track":{"roomName":"r1","trackId":"TR_a",'
    b'"file":{"filepath":"a.ogg","s3":{"accessKey":"{access_key}","secret":"{secret}","bucket":"b"}}},'
    b'"file":{},"startedAt":"1700000000123456789","roomName":"r1","fileResults":[{}],'
    b'"updatedAt":"1700000000123456789","sourceType":"EGRESS_SOURCE_TYPE_SDK"}}'
)
"""Field-number order, camelCase, int64 as strings, STARTING (0) omitted: protojson as LiveKit sends."""


def egress_event() -> RoomEvent:
    info = lk.EgressInfo(
        egress_id="EG_abcdefghijkl",
        room_id="RM_x",
        room_name="r1",
        source_type=lk.EgressSourceType.EGRESS_SOURCE_TYPE_SDK,
        status=lk.EgressStatus.EGRESS_STARTING,
        started_at=1_700_000_000_123_456_789,
        updated_at=1_700_000_000_123_456_789,
        track=lk.TrackEgressRequest(
            room_name="r1",
            track_id="TR_a",
            file=lk.DirectFileOutput(
                filepath="a.ogg", s3=lk.S3Upload(access_key="{access_key}", secret="{secret}", bucket="b")
            ),
        ),
        file_results=[lk.FileInfo()],
        file=lk.FileInfo(),
    )
    return RoomEvent(
        id="EV_eg1",
        event="egress_started",
        created_at=1_700_000_000,
        created_at_ms=1_700_000_000_000,
        room=lk_models.Room(sid="RM_x", name="r1"),
        egress_info=info,
    )


def test_egress_events_are_webhooks() -> None:
    for name in ("egress_started", "egress_updated", "egress_ended"):
        assert wire.is_webhook(RoomEvent(event=name))


def test_the_body_carries_egress_info() -> None:
    assert wire.encode(egress_event()).body == GOLDEN


def test_the_official_receiver_reads_egress_info() -> None:
    body = wire.encode(egress_event()).body
    headers = wire.headers(body, KEY, SECRET)
    receiver = lkapi.WebhookReceiver(lkapi.TokenVerifier(KEY, SECRET))
    event = receiver.receive(body.decode(), headers["Authorization"])
    assert event.event == "egress_started"
    assert event.egress_info == egress_event().egress_info
    assert (event.room.sid, event.room.name) == ("RM_x", "r1")
