"""Room operations as pure functions over a RoomRecord (no Redis): events, deadlines, replacement."""

from __future__ import annotations

import pytest
from livekit.protocol import models
from livekit.protocol.room import RoomConfiguration, UpdateParticipantRequest

from parley.bus import ErrorCode, RpcError
from parley.config import RoomConfig
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.room_state import rooms
from parley.room_state.record import RoomRecord

pytestmark = pytest.mark.unit

DEFAULTS = RoomConfig(empty_timeout=300, departure_timeout=20)
Kind = models.ParticipantInfo.Kind
State = models.ParticipantInfo.State


def _join(
    rec: RoomRecord | None, identity: str, kind: int = Kind.STANDARD, **kw: object
) -> tuple[RoomRecord, pb.JoinRoomResponse]:
    req = pb.JoinRoomRequest(room_name="r", participant=models.ParticipantInfo(identity=identity, kind=kind))  # type: ignore[arg-type]
    fn = rooms.join(req, DEFAULTS, bool(kw.get("allow", True)), {"N1"}, "N1")
    out, resp = fn(rec)
    assert out is not None
    return out, resp


def _fresh(rec: RoomRecord) -> RoomRecord:
    """What the next mutation sees: the stored state without the change tracking."""
    return RoomRecord(
        room=rec.room_view(),
        config=rec.config,
        node_id=rec.node_id,
        seq=rec.seq,
        had_participant=rec.had_participant,
        last_left_ms=rec.last_left_ms,
        participants=dict(rec.participants),
        sessions=dict(rec.sessions),
    )


def test_join_creates_room_with_defaults_and_token_config() -> None:
    req = pb.JoinRoomRequest(
        room_name="r",
        participant=models.ParticipantInfo(identity="a"),
        room_config=RoomConfiguration(empty_timeout=7, metadata="tok"),
    )
    rec, resp = rooms.join(req, DEFAULTS, True, set(), "N1")(None)
    assert rec is not None and resp.room_created and resp.node_id == "N1"
    assert rec.room.empty_timeout == 7 and rec.room.departure_timeout == 20 and rec.room.metadata == "tok"
    assert [e.event for e in rec.events] == ["room_started", "participant_connected"]
    assert [e.room_sequence for e in rec.events] == [1, 2]
    assert rec.compute_deadline() == 0


def test_join_refusals() -> None:
    with pytest.raises(RpcError) as err:
        _join(None, "a", allow=False)
    assert err.value.code is ErrorCode.NOT_FOUND and err.value.message == "requested room does not exist"
    req = pb.JoinRoomRequest(room_name="r", participant=models.ParticipantInfo(identity="a"))
    with pytest.raises(RpcError) as err:
        rooms.join(req, DEFAULTS, True, set(), "")(None)
    assert err.value.code is ErrorCode.UNAVAILABLE


def test_replacing_an_identity_and_max_participants() -> None:
    rec, first = _join(None, "a")
    rec.room.max_participants = 1
    rec, second = _join(_fresh(rec), "a")
    assert second.replaced.participant_sid == first.participant.sid
    assert [e.event for e in rec.events] == ["participant_connection_aborted", "participant_connected"]
    with pytest.raises(RpcError) as err:
        _join(_fresh(rec), "b")
    assert err.value.code is ErrorCode.RESOURCE_EXHAUSTED


def test_active_left_and_departure_deadline() -> None:
    rec, joined = _join(None, "a")
    sid = joined.participant.sid
    active, _ = rooms.participant_active(sid)(_fresh(rec))
    assert active is not None and active.participants["a"].state == State.ACTIVE
    assert [e.event for e in active.events] == ["participant_joined"]
    again, _ = rooms.participant_active(sid)(_fresh(active))
    assert again is None, "a second ParticipantActive changes nothing"
    left, _ = rooms.participant_left(sid, models.DisconnectReason.CLIENT_INITIATED)(_fresh(active))
    assert left is not None and [e.event for e in left.events] == ["participant_left"]
    assert left.compute_deadline() == left.last_left_ms + 20_000


def test_agents_never_keep_a_room_open() -> None:
    rec, _ = _join(None, "agent", kind=Kind.AGENT)
    assert rec.compute_deadline() == rec.room.creation_time_ms + 300_000
    closed, (result, exists) = rooms.close_if_due(rec.compute_deadline())(_fresh(rec))
    assert exists and result is not None and closed is not None and closed.deleted
    assert [e.event for e in closed.events] == ["participant_connection_aborted", "room_finished"]


def test_close_if_due_rearms_when_not_due() -> None:
    rec, _ = _join(None, "agent", kind=Kind.AGENT)
    out, (result, exists) = rooms.close_if_due(rec.room.creation_time_ms + 1)(_fresh(rec))
    assert exists and result is None and out is not None and out.touched and not out.deleted


def test_update_participant_semantics() -> None:
    rec, _ = _join(None, "a")
    rec.participants["a"].attributes["keep"] = "1"
    rec.participants["a"].attributes["drop"] = "1"
    req = UpdateParticipantRequest(room="r", identity="a", name="A", attributes={"drop": "", "new": "2"})
    out, (_, info) = rooms.update_participant(req)(_fresh(rec))
    assert out is not None and info.name == "A" and dict(info.attributes) == {"keep": "1", "new": "2"}
    assert [e.event for e in out.events] == ["participant_updated"]


def test_participant_updated_is_a_delta_and_room_state_assigns_the_version() -> None:
    rec, joined = _join(None, "a")
    version = rec.participants["a"].version
    delta = pb.ParticipantUpdatedRequest(participant_sid=joined.participant.sid, metadata="new")
    out, _ = rooms.participant_updated(delta)(_fresh(rec))
    assert out is not None and out.participants["a"].metadata == "new"
    assert out.participants["a"].version == version + 1 and out.participants["a"].state == State.JOINED
    assert [e.event for e in out.events] == ["participant_updated"]


def test_move_room_changes_only_the_node_and_a_rejoin_there_is_a_migration() -> None:
    rec, _ = _join(None, "alice")
    moved, ok = rooms.move_room("N1", "N2")(_fresh(rec))
    assert ok and moved is not None and moved.node_id == "N2" and moved.touched  # stored although no event
    assert rooms.move_room("N9", "N2")(_fresh(rec)) == (None, False)  # not on that node: nothing
    req = pb.JoinRoomRequest(room_name="r", participant=models.ParticipantInfo(identity="alice"))
    out, resp = rooms.join(req, DEFAULTS, True, {"N2"}, "N2")(_fresh(moved))
    assert out is not None and resp.node_id == "N2"
    # (never ACTIVE here, so the leave is participant_connection_aborted; the reason is what matters)
    left = [e for e in out.events if e.event in ("participant_left", "participant_connection_aborted")]
    assert [e.participant.disconnect_reason for e in left] == [models.DisconnectReason.MIGRATION]


def test_evacuate_removes_everyone_with_migration_and_places_the_room_again() -> None:
    rec, _ = _join(None, "alice")
    rec, _ = _join(_fresh(rec), "bob")
    out, gone = rooms.evacuate("N1", "N2")(_fresh(rec))
    assert out is not None and out.node_id == "N2" and not out.participants
    assert len(gone) == 2
    reasons = {e.participant.identity: e.participant.disconnect_reason for e in out.events}
    assert set(reasons) == {"alice", "bob"}
    assert set(reasons.values()) == {models.DisconnectReason.MIGRATION}
    assert rooms.evacuate("N1", "N2")(_fresh(out)) == (
        None,
        [],
    )  # idempotent: a second watcher changes nothing
