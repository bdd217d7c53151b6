"""What each operation does to a room: pure functions over a RoomRecord, run inside Store.mutate.

Each returns a Mutation; raising an error leaves the stored room untouched.

room-state is the one writer of participant and track records and their ``version``: a change
gets the participant's next version and exactly one event; a write that changes nothing (muting a
muted track, the same metadata again, a command's own change reported back by the node) stores
nothing and emits nothing. The SFU reports deltas, never versions of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from livekit.protocol import models
from livekit.protocol.room import (
    CreateRoomRequest,
    RoomConfiguration,
    UpdateParticipantRequest,
)

from parley.config import RoomConfig
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.protocol.ids import PARTICIPANT_PREFIX, ROOM_PREFIX, new_id, now_ms
from parley.protocol.participant_fields import apply_fields
from parley.room_state.errors import (
    NoNodeAvailable,
    ParticipantNotFound,
    RoomFull,
    RoomNotFound,
    TrackNotFound,
)
from parley.room_state.record import RoomRecord
from parley.room_state.store import Mutation, T

State = models.ParticipantInfo.State
Reason = models.DisconnectReason


@dataclass(frozen=True, slots=True)
class Closed:
    """A room that an operation closed: where to send delete_room."""

    node_id: str
    room: models.Room


def config_from_create(req: CreateRoomRequest) -> RoomConfiguration:
    return RoomConfiguration(
        name=req.name,
        empty_timeout=req.empty_timeout,
        departure_timeout=req.departure_timeout,
        max_participants=req.max_participants,
        metadata=req.metadata,
        egress=req.egress,
        min_playout_delay=req.min_playout_delay,
        max_playout_delay=req.max_playout_delay,
        sync_streams=req.sync_streams,
        agents=list(req.agents),
    )


def new_room(name: str, config: RoomConfiguration, defaults: RoomConfig, node_id: str) -> RoomRecord:
    ms = now_ms()
    resolved = RoomConfiguration()
    resolved.CopyFrom(config)
    resolved.name = name
    resolved.empty_timeout = config.empty_timeout or defaults.empty_timeout
    resolved.departure_timeout = config.departure_timeout or defaults.departure_timeout
    resolved.max_participants = config.max_participants or defaults.max_participants
    room = models.Room(
        sid=new_id(ROOM_PREFIX),
        name=name,
        empty_timeout=resolved.empty_timeout,
        departure_timeout=resolved.departure_timeout,
        max_participants=resolved.max_participants,
        creation_time=ms // 1000,
        creation_time_ms=ms,
        metadata=config.metadata,
    )
    record = RoomRecord(room=room, config=resolved, node_id=node_id, created=True)
    record.emit("room_started", with_config=True)
    return record


def create_room(
    name: str, config: RoomConfiguration, defaults: RoomConfig, node_id: str
) -> Mutation[tuple[models.Room, bool]]:
    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, tuple[models.Room, bool]]:
        if rec is not None:
            return None, (rec.room_view(), False)
        rec = new_room(name, config, defaults, node_id)
        return rec, (rec.room_view(), True)

    return fn


def join(
    req: pb.JoinRoomRequest, defaults: RoomConfig, allow_create: bool, live: set[str], candidate: str
) -> Mutation[pb.JoinRoomResponse]:
    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, pb.JoinRoomResponse]:
        if rec is not None and (repeat := _repeated_join(rec, req, live)) is not None:
            return None, repeat
        created = rec is None
        if rec is None:
            if not allow_create:
                raise RoomNotFound()
            if not candidate:
                raise NoNodeAvailable()
            config = req.room_config if req.HasField("room_config") else RoomConfiguration()
            rec = new_room(req.room_name, config, defaults, candidate)
        if rec.node_id not in live:
            if not candidate:
                raise NoNodeAvailable()
            rec.node_id = candidate
        identity = req.participant.identity
        response = pb.JoinRoomResponse(room_created=created)
        old = rec.participants.get(identity)
        if old is not None:
            session = rec.sessions.get(identity) or pb.Session(participant_sid=old.sid)
            response.replaced.CopyFrom(session)
            # a session left on a node the room moved away from is a migration, not a duplicate
            moved = bool(session.node_id) and session.node_id != rec.node_id
            _leave(rec, old, Reason.MIGRATION if moved else Reason.DUPLICATE_IDENTITY)
        limit = rec.room.max_participants
        if limit and len(rec.participants) >= limit:
            raise RoomFull()
        ms = now_ms()
        participant = models.ParticipantInfo()
        participant.CopyFrom(req.participant)
        participant.sid = new_id(PARTICIPANT_PREFIX)
        participant.joined_at = ms // 1000
        participant.joined_at_ms = ms
        participant.version = 1
        participant.state = State.JOINED
        participant.region = participant.region or req.region
        del participant.tracks[:]
        rec.put_participant(participant)
        rec.sessions[identity] = pb.Session(
            participant_sid=participant.sid,
            edge_id=req.edge_id,
            connection_id=req.connection_id,
            node_id=rec.node_id,
        )
        rec.emit("participant_connected", participant=participant)
        response.room.CopyFrom(rec.room_view())
        response.participant.CopyFrom(participant)
        response.node_id = rec.node_id
        return rec, response

    return fn


def _repeated_join(rec: RoomRecord, req: pb.JoinRoomRequest, live: set[str]) -> pb.JoinRoomResponse | None:
    """The answer to a JoinRoom this room already admitted: the same connection of the same edge
    (the edge asks again when no answer came, ``Rpc.idempotent``). Nothing changes and nothing is
    emitted; the participant as it is now. None: not a repeat (or its node is gone: join anew)."""
    identity = req.participant.identity
    participant = rec.participants.get(identity)
    session = rec.sessions.get(identity)
    if not req.connection_id or participant is None or session is None:
        return None
    same = (session.connection_id, session.edge_id, session.participant_sid) == (
        req.connection_id,
        req.edge_id,
        participant.sid,
    )
    if not same or rec.node_id not in live or session.node_id != rec.node_id:
        return None
    response = pb.JoinRoomResponse(room=rec.room_view(), participant=participant, node_id=rec.node_id)
    return response


def move_room(from_node: str, to_node: str) -> Mutation[bool]:
    """A draining node's room goes to ``to_node``; its participants rejoin there (True if moved)."""

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, bool]:
        if rec is None or rec.node_id != from_node or not to_node or to_node == from_node:
            return None, False
        rec.node_id = to_node
        rec.touched = True  # the node is part of the stored room
        return rec, True

    return fn


def evacuate(lost_node: str, to_node: str) -> Mutation[list[str]]:
    """A lost node's room: every participant leaves (MIGRATION: they rejoin on the room's new node)
    and the room goes to ``to_node`` ("" = placed again at the next join). Idempotent."""

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, list[str]]:
        if rec is None or rec.node_id != lost_node:
            return None, []
        gone = list(rec.participants.values())
        for participant in gone:
            _leave(rec, participant, Reason.MIGRATION)
        rec.node_id = to_node
        rec.touched = True
        return rec, [p.sid for p in gone]

    return fn


def _leave(rec: RoomRecord, participant: models.ParticipantInfo, reason: int) -> None:
    was_active = participant.state == State.ACTIVE
    rec.drop_participant(participant.identity)
    participant.state = State.DISCONNECTED
    participant.disconnect_reason = reason  # type: ignore[assignment]
    rec.emit("participant_left" if was_active else "participant_connection_aborted", participant=participant)


def _require(rec: RoomRecord | None) -> RoomRecord:
    if rec is None:
        raise RoomNotFound()
    return rec


def _participant_by_sid(rec: RoomRecord, sid: str) -> models.ParticipantInfo:
    participant = rec.by_sid(sid)
    if participant is None:
        raise ParticipantNotFound()
    return participant


def _participant(rec: RoomRecord, identity: str) -> models.ParticipantInfo:
    participant = rec.participants.get(identity)
    if participant is None:
        raise ParticipantNotFound()
    return participant


def participant_active(sid: str) -> Mutation[None]:
    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, None]:
        rec = _require(rec)
        participant = _participant_by_sid(rec, sid)
        if participant.state == State.ACTIVE:
            return None, None
        participant.state = State.ACTIVE
        participant.version += 1
        rec.put_participant(participant)
        rec.emit("participant_joined", participant=participant)
        return rec, None

    return fn


def participant_left(sid: str, reason: int) -> Mutation[None]:
    """Idempotent: a participant that is already gone is not an error."""

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, None]:
        participant = rec.by_sid(sid) if rec is not None else None
        if rec is None or participant is None:
            return None, None
        _leave(rec, participant, reason)
        return rec, None

    return fn


def reported(reporter: str, seq: int, inner: Mutation[T]) -> Mutation[T | None]:
    """Apply an SFU report once: a ``seq`` at or below the room's last applied seq of ``reporter``
    is a retry of a report already applied (its answer was lost) and changes nothing."""

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, T | None]:
        if rec is not None and reporter and rec.reports.get(reporter, 0) >= seq:
            return None, None
        out, result = inner(rec)
        if out is not None and reporter:
            out.applied(reporter, seq)
        return out, result

    return fn


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What comparing a room with its node's sessions found."""

    removed: list[models.ParticipantInfo]
    """Participants hosted on the node that it does not hold: they left (STATE_MISMATCH)."""
    unknown: list[str]
    """Sids the node holds in this room that room-state has no participant for."""


def reconcile(node_id: str, held: set[str], cutoff_ms: int) -> Mutation[Reconciled]:
    """The node really holds the sessions ``held`` in this room: every participant hosted there
    (its session's node, else the room's) that joined before ``cutoff_ms`` and is not held leaves
    with STATE_MISMATCH. Idempotent."""

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, Reconciled]:
        if rec is None:
            return None, Reconciled([], sorted(held))
        gone = []
        for identity, participant in rec.participants.items():
            session = rec.sessions.get(identity)
            host = session.node_id if session is not None and session.node_id else rec.node_id
            if host == node_id and participant.sid not in held and participant.joined_at_ms < cutoff_ms:
                gone.append(participant)
        for participant in gone:
            _leave(rec, participant, Reason.STATE_MISMATCH)
        known = {p.sid for p in rec.participants.values()} | {p.sid for p in gone}
        return (rec if gone else None), Reconciled(gone, sorted(held - known))

    return fn


def participant_updated(req: pb.ParticipantUpdatedRequest) -> Mutation[None]:
    """A delta from the node (the client's update_metadata, or a command's change coming back).

    room-state owns the record and its version: the node's view is never copied in, and a delta
    that changes nothing (a command's own change, a repeated update) is no write and no event.
    """

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, None]:
        rec = _require(rec)
        participant = _participant_by_sid(rec, req.participant_sid)
        if not apply_fields(participant, name=req.name, metadata=req.metadata, attributes=req.attributes):
            return None, None
        _participant_changed(rec, participant)
        return rec, None

    return fn


def _participant_changed(rec: RoomRecord, participant: models.ParticipantInfo) -> None:
    """The one place a participant record's change is written: the next version, one event."""
    participant.version += 1
    rec.put_participant(participant)
    rec.emit("participant_updated", participant=participant)


def track_published(sid: str, track: models.TrackInfo) -> Mutation[None]:
    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, None]:
        rec = _require(rec)
        participant = _participant_by_sid(rec, sid)
        if any(t == track for t in participant.tracks):
            return None, None  # already stored as it is
        kept = [t for t in participant.tracks if t.sid != track.sid]
        del participant.tracks[:]
        participant.tracks.extend([*kept, track])
        participant.version += 1
        rec.put_participant(participant)
        rec.emit("track_published", participant=participant, track=track)
        return rec, None

    return fn


def track_unpublished(sid: str, track_sid: str) -> Mutation[None]:
    """Idempotent: a track that is already gone is not an error."""

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, None]:
        participant = rec.by_sid(sid) if rec is not None else None
        if rec is None or participant is None:
            return None, None
        gone = [t for t in participant.tracks if t.sid == track_sid]
        if not gone:
            return None, None
        kept = [t for t in participant.tracks if t.sid != track_sid]
        del participant.tracks[:]
        participant.tracks.extend(kept)
        participant.version += 1
        rec.put_participant(participant)
        rec.emit("track_unpublished", participant=participant, track=gone[0])
        return rec, None

    return fn


def track_updated(req: pb.TrackUpdatedRequest) -> Mutation[models.TrackInfo]:
    """The node saw the publisher mute or unmute (or applied a MutePublishedTrack: no change then)."""

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, models.TrackInfo]:
        rec = _require(rec)
        participant = _participant_by_sid(rec, req.participant_sid)
        return _set_muted(rec, participant, req.track_sid, req.muted)

    return fn


def _set_muted(
    rec: RoomRecord, participant: models.ParticipantInfo, track_sid: str, muted: bool
) -> tuple[RoomRecord | None, models.TrackInfo]:
    """Mute or unmute a stored track: the next participant version and one ``track_updated``, or
    nothing at all when the track already is that way."""
    track = next((t for t in participant.tracks if t.sid == track_sid), None)
    if track is None:
        raise TrackNotFound()
    if track.muted == muted:
        return None, track
    track.muted = muted
    participant.version += 1
    rec.put_participant(participant)
    rec.emit("track_updated", participant=participant, track=track)
    return rec, track


@dataclass(frozen=True, slots=True)
class Muted:
    """What MutePublishedTrack wrote: where to send the command and the version it carries."""

    node_id: str
    track: models.TrackInfo
    participant_version: int


def mute_track(identity: str, track_sid: str, muted: bool) -> Mutation[Muted]:
    """Idempotent: muting a muted track changes no version and emits no event."""

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, Muted]:
        rec = _require(rec)
        participant = _participant(rec, identity)
        out, track = _set_muted(rec, participant, track_sid, muted)
        return out, Muted(rec.node_id, track, participant.version)

    return fn


def update_participant(req: UpdateParticipantRequest) -> Mutation[tuple[str, models.ParticipantInfo]]:
    """LiveKit's semantics: empty name/metadata keep the old value; an empty attribute value deletes it.
    Idempotent: an update that changes nothing changes no version and emits no event."""

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, tuple[str, models.ParticipantInfo]]:
        rec = _require(rec)
        participant = _participant(rec, req.identity)
        changed = apply_fields(participant, name=req.name, metadata=req.metadata, attributes=req.attributes)
        if req.HasField("permission") and participant.permission != req.permission:
            participant.permission.CopyFrom(req.permission)
            changed = True
        if not changed:
            return None, (rec.node_id, participant)
        _participant_changed(rec, participant)
        return rec, (rec.node_id, participant)

    return fn


def update_room_metadata(metadata: str) -> Mutation[tuple[str, models.Room]]:
    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, tuple[str, models.Room]]:
        rec = _require(rec)
        rec.room.metadata = metadata
        rec.touched = True
        rec.emit("room_updated")
        return rec, (rec.node_id, rec.room_view())

    return fn


def remove_participant(identity: str) -> Mutation[str]:
    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, str]:
        rec = _require(rec)
        _leave(rec, _participant(rec, identity), Reason.PARTICIPANT_REMOVED)
        return rec, rec.node_id

    return fn


def _close(rec: RoomRecord, reason: int) -> Closed:
    for participant in list(rec.participants.values()):
        _leave(rec, participant, reason)
    rec.deleted = True
    rec.emit("room_finished")
    return Closed(rec.node_id, rec.room_view())


def delete_room() -> Mutation[Closed]:
    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, Closed]:
        rec = _require(rec)
        return rec, _close(rec, Reason.ROOM_DELETED)

    return fn


def close_if_due(now: int) -> Mutation[tuple[Closed | None, bool]]:
    """Close the room when its deadline passed and nobody keeps it open; else re-arm the deadline.

    The result is (the closed room or None, whether the room exists).
    """

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, tuple[Closed | None, bool]]:
        if rec is None:
            return None, (None, False)
        deadline = rec.compute_deadline()
        if deadline == 0 or deadline > now:
            rec.touched = True
            return rec, (None, True)
        return rec, (_close(rec, Reason.ROOM_CLOSED), True)

    return fn
