"""A JoinRoom asked again by the edge (no answer came: ``Rpc.idempotent``) is recognised by its
connection: the same participant comes back, nothing is stored again and no event is emitted."""

from __future__ import annotations

import pytest
from livekit.protocol import models

from parley.bus import rpcs
from parley.config import RoomConfig
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.room_state import rooms
from parley.room_state.record import RoomRecord

pytestmark = pytest.mark.unit

LIVE = {"N1"}


def request(identity: str = "alice", connection: str = "CO_1", edge: str = "SIG_1") -> pb.JoinRoomRequest:
    return pb.JoinRoomRequest(
        room_name="r",
        participant=models.ParticipantInfo(identity=identity),
        edge_id=edge,
        connection_id=connection,
    )


def stored(rec: RoomRecord) -> RoomRecord:
    """What the next mutation reads back: the record without its change tracking."""
    return RoomRecord(
        room=rec.room_view(),
        config=rec.config,
        node_id=rec.node_id,
        seq=rec.seq,
        participants=dict(rec.participants),
        sessions=dict(rec.sessions),
    )


def join(rec: RoomRecord | None, req: pb.JoinRoomRequest) -> tuple[RoomRecord | None, pb.JoinRoomResponse]:
    return rooms.join(req, RoomConfig(), True, LIVE, "N1")(rec)


def test_a_repeated_join_returns_the_same_participant_and_changes_nothing() -> None:
    first, answer = join(None, request())
    assert first is not None
    again, repeat = join(stored(first), request())
    assert again is None, "a repeat stores nothing and emits no event"
    assert repeat.participant.sid == answer.participant.sid
    assert repeat.node_id == answer.node_id == "N1"
    assert repeat.room.name == "r" and not repeat.HasField("replaced")


@pytest.mark.parametrize("other", [request(connection="CO_2"), request(edge="SIG_2"), request(connection="")])
def test_another_connection_of_the_identity_is_a_new_join(other: pb.JoinRoomRequest) -> None:
    first, answer = join(None, request())
    assert first is not None
    second, replacing = join(stored(first), other)
    assert second is not None
    assert replacing.participant.sid != answer.participant.sid
    assert replacing.replaced.participant_sid == answer.participant.sid
    assert [e.event for e in second.events] == ["participant_connection_aborted", "participant_connected"]


def test_a_repeat_whose_node_is_gone_joins_anew_on_a_live_node() -> None:
    first, answer = join(None, request())
    assert first is not None
    second, moved = rooms.join(request(), RoomConfig(), True, {"N2"}, "N2")(stored(first))
    assert second is not None and moved.node_id == "N2"
    assert moved.participant.sid != answer.participant.sid


def test_join_room_is_asked_again_by_the_edge() -> None:
    assert rpcs.JOIN_ROOM.idempotent and rpcs.JOIN_ROOM.shared
