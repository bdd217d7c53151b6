"""Auto-egress from room events: what starts, once, and the path rule (fake starts, memory state)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from livekit.protocol import egress as lk
from livekit.protocol import models
from livekit.protocol import room as lk_room

from parley.bus import ErrorCode, RpcError
from parley.egress.auto import AutoEgress, track_request
from parley.egress.fakes import MemoryAutoState
from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent

pytestmark = pytest.mark.unit


@dataclass
class Starts:
    tracks: list[lk.TrackEgressRequest] = field(default_factory=list)
    rooms: list[lk.RoomCompositeEgressRequest] = field(default_factory=list)
    participants: list[lk.ParticipantEgressRequest] = field(default_factory=list)
    error: RpcError | None = None

    async def track(self, req: lk.TrackEgressRequest) -> lk.EgressInfo:
        if self.error is not None:
            raise self.error
        self.tracks.append(req)
        return lk.EgressInfo(egress_id=f"EG_{len(self.tracks)}")

    async def room(self, req: lk.RoomCompositeEgressRequest) -> lk.EgressInfo:
        self.rooms.append(req)
        raise RpcError(ErrorCode.INVALID_ARGUMENT, "only track egress runs on this worker yet")

    async def participant(self, req: lk.ParticipantEgressRequest) -> lk.EgressInfo:
        self.participants.append(req)
        return lk.EgressInfo(egress_id="EG_p")


def started(room: str, egress: lk_room.RoomEgress | None) -> RoomEvent:
    event = RoomEvent(event="room_started")
    event.room.name = room
    if egress is not None:
        event.room_config.egress.CopyFrom(egress)
    return event


def published(room: str, sid: str, kind: int = models.ParticipantInfo.Kind.STANDARD) -> RoomEvent:
    event = RoomEvent(event="track_published")
    event.room.name = room
    event.participant.identity = "alice"
    event.participant.kind = kind  # type: ignore[assignment]
    event.track.sid = sid
    return event


def setup() -> tuple[AutoEgress, MemoryAutoState, Starts]:
    state, starts = MemoryAutoState(), Starts()
    return AutoEgress(state, starts.track, starts.room, starts.participant), state, starts


S3 = lk.S3Upload(bucket="b", access_key="k", secret="s")


async def test_every_track_gets_one_egress_with_the_rooms_settings() -> None:
    auto, state, starts = setup()
    config = lk_room.RoomEgress(tracks=lk.AutoTrackEgress(filepath="rec/{room_name}.ogg", s3=S3))
    await auto.apply(started("r", config))
    await auto.apply(published("r", "TR_a"))
    await auto.apply(published("r", "TR_b"))
    await auto.apply(published("r", "TR_a"))  # redelivered, or republished with the same sid
    assert [(t.room_name, t.track_id, t.file.filepath) for t in starts.tracks] == [
        ("r", "TR_a", "rec/{room_name}-{track_id}.ogg"),
        ("r", "TR_b", "rec/{room_name}-{track_id}.ogg"),
    ]
    assert starts.tracks[0].file.s3 == S3
    await auto.apply(RoomEvent(event="room_finished", room=models.Room(name="r")))
    assert "r" not in state.configs and "r" not in state.claimed


async def test_egress_recorders_and_rooms_without_auto_egress_are_left_alone() -> None:
    auto, _, starts = setup()
    await auto.apply(started("plain", None))
    await auto.apply(published("plain", "TR_a"))
    await auto.apply(started("r", lk_room.RoomEgress(tracks=lk.AutoTrackEgress())))
    await auto.apply(published("r", "TR_rec", kind=models.ParticipantInfo.Kind.EGRESS))
    assert starts.tracks == []


async def test_a_refused_start_is_logged_and_a_passing_failure_is_raised_for_redelivery() -> None:
    auto, state, starts = setup()
    await auto.apply(started("r", lk_room.RoomEgress(room=lk.RoomCompositeEgressRequest(layout="grid"))))
    assert [(r.room_name, r.layout) for r in starts.rooms] == [("r", "grid")]  # refused by workers: logged
    await auto.apply(started("t", lk_room.RoomEgress(tracks=lk.AutoTrackEgress())))
    starts.error = RpcError(ErrorCode.UNAVAILABLE, "no response from servers")
    with pytest.raises(RpcError):
        await auto.apply(published("t", "TR_a"))
    starts.error = RpcError(ErrorCode.NOT_FOUND, "requested room does not exist")
    await auto.apply(published("t", "TR_b"))  # not retried
    assert state.claimed["t"] == {"TR_a", "TR_b"}


async def test_participant_egress_once_per_identity() -> None:
    auto, _, starts = setup()
    auto_participant = lk.AutoParticipantEgress(file_outputs=[lk.EncodedFileOutput(filepath="p.mp4")])
    await auto.apply(started("r", lk_room.RoomEgress(participant=auto_participant)))
    await auto.apply(published("r", "TR_a"))
    await auto.apply(published("r", "TR_b"))
    assert [(p.identity, p.file_outputs[0].filepath) for p in starts.participants] == [("alice", "p.mp4")]
    assert starts.tracks == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", ""),
        ("rec/a.ogg", "rec/a-{track_id}.ogg"),
        ("rec/{track_id}.ogg", "rec/{track_id}.ogg"),
        ("rec/", "rec/"),
        ("rec/a", "rec/a-{track_id}"),
        ("rec.d/a", "rec.d/a-{track_id}"),
    ],
)
def test_the_path_names_the_track(path: str, expected: str) -> None:
    assert track_request("r", "TR_a", lk.AutoTrackEgress(filepath=path)).file.filepath == expected
