"""The edge's limits on client frames: LiveKit's request_response answers, the relay size cap and
the empty-frame token bucket."""

from __future__ import annotations

import pytest
from livekit.protocol import models, rtc

from parley.auth import Claims, VideoGrant
from parley.signaling.rtc import limits

pytestmark = pytest.mark.unit

Reason = rtc.RequestResponse.Reason


def update(**fields: object) -> rtc.SignalRequest:
    return rtc.SignalRequest(update_metadata=rtc.UpdateParticipantMetadata(request_id=5, **fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "é" * 129}, "exceeds name length limit"),  # 258 bytes, 129 characters
        ({"metadata": "m" * (512 * 1024 + 1)}, "exceeds metadata size limit"),
        ({"attributes": {"k": "v" * (64 * 1024)}}, "exceeds attributes size limit"),
    ],
)
def test_update_metadata_over_a_limit(fields: dict[str, object], message: str) -> None:
    answer = limits.refusal(update(**fields))
    assert answer is not None
    assert answer.reason == Reason.LIMIT_EXCEEDED and answer.message == message
    assert answer.request_id == 5 and answer.update_metadata.request_id == 5
    assert not answer.update_metadata.metadata and not answer.update_metadata.attributes


def test_update_metadata_within_the_limits_passes() -> None:
    fields = {"name": "n" * 256, "metadata": "m" * (512 * 1024), "attributes": {"k": "v" * 1000}}
    assert limits.refusal(update(**fields)) is None


def test_add_track_name_over_the_limit() -> None:
    add = rtc.AddTrackRequest(
        cid="c", name="n" * 257, type=models.TrackType.VIDEO, source=models.TrackSource.CAMERA
    )
    answer = limits.refusal(rtc.SignalRequest(add_track=add))
    assert answer is not None and answer.reason == Reason.LIMIT_EXCEEDED
    assert answer.add_track.cid == "c" and answer.add_track.type == models.TrackType.VIDEO
    assert answer.add_track.source == models.TrackSource.CAMERA and not answer.add_track.name
    add.name = "n" * 256
    assert limits.refusal(rtc.SignalRequest(add_track=add)) is None


def test_other_requests_are_not_answered_here() -> None:
    assert limits.refusal(rtc.SignalRequest(ping=1)) is None
    assert not limits.too_large(b"x" * limits.MAX_RELAYED_BYTES)
    assert limits.too_large(b"x" * (limits.MAX_RELAYED_BYTES + 1))


def test_empty_frames_a_few_pass_a_burst_does_not_and_time_refills() -> None:
    now = [0.0]
    guard = limits.EmptyFrameGuard(burst=5, per_second=2, clock=lambda: now[0])
    assert all(guard.allow() for _ in range(5))
    assert not guard.allow()
    now[0] += 1.0  # two more
    assert guard.allow() and guard.allow() and not guard.allow()
    now[0] += 100.0  # never more than the burst
    assert sum(guard.allow() for _ in range(10)) == 5


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (
            Claims(identity="é" * 129, video=VideoGrant(room="r")),
            "participant identity length exceeds limits",
        ),
        (Claims(identity="a", video=VideoGrant(room="r" * 257)), "room name length exceeds limits"),
        (
            Claims(identity="a", name="n" * 257, video=VideoGrant(room="r")),
            "participant name length exceeds limits",
        ),
        (
            Claims(identity="a", metadata="m" * (512 * 1024 + 1), video=VideoGrant(room="r")),
            "metadata size exceeds limits",
        ),
        (
            Claims(identity="a", attributes={"k": "v" * (64 * 1024)}, video=VideoGrant(room="r")),
            "attributes size exceeds limits",
        ),
    ],
)
def test_a_join_token_over_a_limit_is_refused_with_the_field_named(claims: Claims, message: str) -> None:
    breach = limits.join_breach(claims)
    assert breach is not None and breach.startswith(message)


def test_a_join_token_at_the_limits_passes() -> None:
    claims = Claims(
        identity="i" * 256,
        name="n" * 256,
        metadata="m" * (512 * 1024),
        attributes={"k": "v" * 1000},
        video=VideoGrant(room="r" * 256),
    )
    assert limits.join_breach(claims) is None
