"""SFU reports applied once (reporter, seq) and in order; a node's sessions reconciled with the
participants hosted there (pure functions over a RoomRecord, no Redis)."""

from __future__ import annotations

import pytest
from livekit.protocol import models

from parley.config import RoomConfig
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.room_state import rooms
from parley.room_state.errors import ParticipantNotFound
from parley.room_state.record import MAX_REPORTERS, RoomRecord
from parley.room_state.store import _decode_reports, _encode_reports

pytestmark = pytest.mark.unit

DEFAULTS = RoomConfig(empty_timeout=300, departure_timeout=20)
State = models.ParticipantInfo.State
Reason = models.DisconnectReason


def _stored(rec: RoomRecord) -> RoomRecord:
    """What the next mutation sees: the committed state without the change tracking."""
    return RoomRecord(
        room=rec.room_view(),
        config=rec.config,
        node_id=rec.node_id,
        seq=rec.seq,
        participants=dict(rec.participants),
        sessions=dict(rec.sessions),
        reports=_decode_reports(_encode_reports(rec.reports).encode()),
    )


def _join(rec: RoomRecord | None, identity: str, node: str = "N1") -> tuple[RoomRecord, str]:
    req = pb.JoinRoomRequest(room_name="r", participant=models.ParticipantInfo(identity=identity))
    out, resp = rooms.join(req, DEFAULTS, True, {node}, node)(rec)
    assert out is not None
    return _stored(out), resp.participant.sid


def test_a_retried_report_applies_once() -> None:
    rec, sid = _join(None, "a")
    track = models.TrackInfo(sid="TR_1", name="cam")
    publish = rooms.reported("SR_x", 1, rooms.track_published(sid, track))
    out, _ = publish(rec)
    assert out is not None and [e.event for e in out.events] == ["track_published"]
    assert out.reports == {"SR_x": 1}
    again, _ = publish(_stored(out))  # the answer was lost: the SFU sends seq 1 again
    assert again is None
    # another reporter (a restarted SFU process) starts its own sequence
    other, _ = rooms.reported("SR_y", 1, rooms.track_unpublished(sid, "TR_1"))(_stored(out))
    assert other is not None and other.reports == {"SR_x": 1, "SR_y": 1}


def test_a_late_active_never_resurrects_a_participant_that_left() -> None:
    rec, sid = _join(None, "a")
    left, _ = rooms.reported("SR_x", 2, rooms.participant_left(sid, Reason.CLIENT_INITIATED))(rec)
    assert left is not None and "a" not in left.participants
    # seq 1 (active) retried after seq 2 landed: skipped by seq
    skipped, _ = rooms.reported("SR_x", 1, rooms.participant_active(sid))(_stored(left))
    assert skipped is None
    # from a reporter that never applied anything here: the participant is gone, NOT_FOUND (final)
    with pytest.raises(ParticipantNotFound):
        rooms.reported("SR_z", 1, rooms.participant_active(sid))(_stored(left))


def test_reporters_are_bounded() -> None:
    rec, _ = _join(None, "a")
    for i in range(MAX_REPORTERS + 3):
        rec.applied(f"SR_{i}", i + 1)
    assert len(rec.reports) == MAX_REPORTERS and f"SR_{MAX_REPORTERS + 2}" in rec.reports
    assert _decode_reports(_encode_reports(rec.reports).encode()) == rec.reports
    assert _decode_reports(b"") == {}


def test_reconcile_removes_only_old_unheld_participants_of_that_node() -> None:
    rec, held_sid = _join(None, "held")
    rec, ghost_sid = _join(rec, "ghost")
    rec, fresh_sid = _join(rec, "fresh")
    rec.participants["held"].joined_at_ms -= 60_000
    rec.participants["ghost"].joined_at_ms -= 60_000
    cutoff = rec.participants["fresh"].joined_at_ms - 1  # "fresh" joined inside the grace
    # a participant whose session is on another node (the room moved) is not this node's
    rec, other_sid = _join(rec, "elsewhere")
    rec.participants["elsewhere"].joined_at_ms -= 60_000
    rec.sessions["elsewhere"].node_id = "N2"

    out, found = rooms.reconcile("N1", {held_sid, "PA_unknown"}, cutoff)(_stored(rec))
    assert out is not None
    assert [p.sid for p in found.removed] == [ghost_sid]
    assert found.unknown == ["PA_unknown"]
    assert set(out.participants) == {"held", "fresh", "elsewhere"}
    [event] = out.events
    assert event.event == "participant_connection_aborted"  # never ACTIVE
    assert event.participant.disconnect_reason == Reason.STATE_MISMATCH
    # idempotent
    again, found = rooms.reconcile("N1", {held_sid}, cutoff)(_stored(out))
    assert again is None and not found.removed
    assert fresh_sid and other_sid


def test_reconcile_of_an_active_participant_is_a_left() -> None:
    rec, sid = _join(None, "a")
    out, _ = rooms.participant_active(sid)(rec)
    assert out is not None
    out = _stored(out)
    out.participants["a"].joined_at_ms -= 60_000
    gone, found = rooms.reconcile("N1", set(), out.participants["a"].joined_at_ms + 1)(out)
    assert gone is not None and [e.event for e in gone.events] == ["participant_left"]
    assert gone.events[0].participant.disconnect_reason == Reason.STATE_MISMATCH
    assert [p.sid for p in found.removed] == [sid]


def test_reconcile_of_a_missing_room_lists_the_sessions_as_unknown() -> None:
    out, found = rooms.reconcile("N1", {"PA_b", "PA_a"}, 0)(None)
    assert out is None and found.unknown == ["PA_a", "PA_b"] and not found.removed
