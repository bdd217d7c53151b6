"""One writer per record: room-state alone versions participant and track records, one event per
real change, and a write that changes nothing (a repeat, or a command's change reported back by the
SFU) stores nothing and emits nothing."""

from __future__ import annotations

import pytest
from livekit.protocol import models
from livekit.protocol.room import UpdateParticipantRequest

from parley.config import RoomConfig
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.room_state import rooms
from parley.room_state.record import RoomRecord
from parley.room_state.store import Mutation, T

pytestmark = pytest.mark.unit

DEFAULTS = RoomConfig(empty_timeout=300, departure_timeout=20)


def _stored(rec: RoomRecord) -> RoomRecord:
    """What the next mutation loads: a copy of the stored state, without change tracking."""
    participants = {}
    for identity, participant in rec.participants.items():
        copy = models.ParticipantInfo()
        copy.CopyFrom(participant)
        participants[identity] = copy
    return RoomRecord(
        room=rec.room_view(),
        config=rec.config,
        node_id=rec.node_id,
        seq=rec.seq,
        had_participant=rec.had_participant,
        last_left_ms=rec.last_left_ms,
        participants=participants,
        sessions=dict(rec.sessions),
        reports=dict(rec.reports),
    )


class Room:
    """A stored room that mutations are applied to, as Store.mutate does (None: nothing stored)."""

    def __init__(self) -> None:
        req = pb.JoinRoomRequest(room_name="r", participant=models.ParticipantInfo(identity="alice"))
        rec, joined = rooms.join(req, DEFAULTS, True, {"N1"}, "N1")(None)
        assert rec is not None
        self.rec = _stored(rec)
        self.sid = joined.participant.sid
        self.events: list[pb.RoomEvent] = list(rec.events)
        self.apply(rooms.participant_active(self.sid))
        track = models.TrackInfo(sid="TR_mic", type=models.TrackType.AUDIO, name="mic")
        self.apply(rooms.track_published(self.sid, track))

    def apply(self, fn: Mutation[T]) -> tuple[bool, T]:
        out, result = fn(_stored(self.rec))
        if out is None:
            return False, result
        self.events.extend(out.events)
        self.rec = _stored(out)
        return True, result

    @property
    def alice(self) -> models.ParticipantInfo:
        return self.rec.participants["alice"]

    def names(self) -> list[str]:
        return [e.event for e in self.events]


def test_mute_published_track_writes_once_and_a_repeat_is_no_write() -> None:
    room = Room()
    before = room.alice.version
    wrote, muted = room.apply(rooms.mute_track("alice", "TR_mic", True))
    assert wrote and muted.track.muted and muted.node_id == "N1"
    assert muted.participant_version == room.alice.version == before + 1
    assert room.names()[-1] == "track_updated" and room.events[-1].participant.version == before + 1
    count = len(room.events)
    wrote, again = room.apply(rooms.mute_track("alice", "TR_mic", True))
    assert not wrote and again.track.muted and again.participant_version == before + 1
    assert len(room.events) == count and room.alice.version == before + 1


def test_the_nodes_report_of_a_commands_own_change_is_no_write() -> None:
    room = Room()
    room.apply(rooms.mute_track("alice", "TR_mic", True))
    version, count = room.alice.version, len(room.events)
    echo = pb.TrackUpdatedRequest(participant_sid=room.sid, track_sid="TR_mic", muted=True)
    wrote, _ = room.apply(rooms.track_updated(echo))
    assert not wrote and room.alice.version == version and len(room.events) == count
    # the publisher unmuting on its own is a real change: next version, one event
    unmuted = pb.TrackUpdatedRequest(participant_sid=room.sid, track_sid="TR_mic", muted=False)
    wrote, track = room.apply(rooms.track_updated(unmuted))
    assert wrote and not track.muted and room.alice.version == version + 1
    assert room.names()[count:] == ["track_updated"]


def test_update_participant_writes_once_and_a_repeat_is_no_write() -> None:
    room = Room()
    before = room.alice.version
    req = UpdateParticipantRequest(
        room="r",
        identity="alice",
        metadata="m1",
        name="Alice",
        attributes={"role": "host"},
        permission=models.ParticipantPermission(can_subscribe=True, can_publish=True),
    )
    wrote, (node, info) = room.apply(rooms.update_participant(req))
    assert wrote and node == "N1" and info.version == before + 1 == room.alice.version
    assert room.names()[-1] == "participant_updated"
    count = len(room.events)
    wrote, (_, info) = room.apply(rooms.update_participant(req))
    assert not wrote and info.version == before + 1 and len(room.events) == count
    # deleting an attribute that is not there, an empty name/metadata: nothing either
    noop = UpdateParticipantRequest(room="r", identity="alice", attributes={"absent": ""})
    assert room.apply(rooms.update_participant(noop))[0] is False
    # only the permission differs: a change
    revoke = UpdateParticipantRequest(
        room="r", identity="alice", permission=models.ParticipantPermission(can_subscribe=True)
    )
    wrote, (_, info) = room.apply(rooms.update_participant(revoke))
    assert wrote and not info.permission.can_publish and info.version == before + 2


def test_the_nodes_metadata_delta_is_applied_once() -> None:
    room = Room()
    room.apply(rooms.update_participant(UpdateParticipantRequest(room="r", identity="alice", metadata="m1")))
    version, count = room.alice.version, len(room.events)
    echo = pb.ParticipantUpdatedRequest(participant_sid=room.sid, metadata="m1")
    assert room.apply(rooms.participant_updated(echo))[0] is False
    assert room.alice.version == version and len(room.events) == count
    own = pb.ParticipantUpdatedRequest(participant_sid=room.sid, attributes={"mood": "happy"}, name="Al")
    assert room.apply(rooms.participant_updated(own))[0] is True
    assert room.alice.name == "Al" and dict(room.alice.attributes) == {"mood": "happy"}
    assert room.alice.metadata == "m1" and room.alice.version == version + 1
    assert room.names()[count:] == ["participant_updated"]


def test_republishing_a_stored_track_as_it_is_is_no_write() -> None:
    room = Room()
    version, count = room.alice.version, len(room.events)
    same = models.TrackInfo(sid="TR_mic", type=models.TrackType.AUDIO, name="mic")
    assert room.apply(rooms.track_published(room.sid, same))[0] is False
    assert room.alice.version == version and len(room.events) == count


def test_every_event_of_a_participant_carries_a_newer_version() -> None:
    """What API clients and webhooks see: one record, versions strictly increasing per change."""
    room = Room()
    room.apply(rooms.mute_track("alice", "TR_mic", True))
    room.apply(rooms.mute_track("alice", "TR_mic", True))
    room.apply(rooms.update_participant(UpdateParticipantRequest(room="r", identity="alice", metadata="x")))
    room.apply(
        rooms.participant_updated(pb.ParticipantUpdatedRequest(participant_sid=room.sid, metadata="x"))
    )
    room.apply(rooms.track_updated(pb.TrackUpdatedRequest(participant_sid=room.sid, track_sid="TR_mic")))
    room.apply(rooms.track_unpublished(room.sid, "TR_mic"))
    mine = [e for e in room.events if e.participant.identity == "alice"]
    assert [e.event for e in mine] == [
        "participant_connected",
        "participant_joined",
        "track_published",
        "track_updated",
        "participant_updated",
        "track_updated",
        "track_unpublished",
    ]
    versions = [e.participant.version for e in mine]
    assert versions == list(range(1, len(mine) + 1)), versions
