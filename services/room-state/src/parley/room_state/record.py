"""A room as stored: a snapshot loaded from Redis, changed in memory, then committed with its events.

Every change goes through ``emit`` so the events written to the outbox are exactly the
changes written to the store (both land in one MULTI/EXEC).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livekit.protocol import models
from livekit.protocol.room import RoomConfiguration

from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.protocol.ids import EVENT_PREFIX, new_id, now_ms

Kind = models.ParticipantInfo.Kind
DEPENDENT_KINDS = (Kind.AGENT, Kind.EGRESS)
MAX_REPORTERS = 8
"""SFU processes whose last report seq a room remembers (a room lives on one node at a time)."""


def is_dependent(participant: models.ParticipantInfo) -> bool:
    """Agents, egress and recorders never keep a room open."""
    return (
        participant.kind in DEPENDENT_KINDS or participant.permission.agent or participant.permission.recorder
    )


@dataclass
class RoomRecord:
    """One room with its participants and sessions, plus what changed since it was loaded."""

    room: models.Room
    config: RoomConfiguration = field(default_factory=RoomConfiguration)
    node_id: str = ""
    seq: int = 0
    had_participant: bool = False
    """A participant that keeps the room open has joined at least once."""
    last_left_ms: int = 0
    """When the last participant that keeps the room open left."""
    deadline_ms: int = 0
    """When the room closes unless someone joins; 0 = kept open."""
    participants: dict[str, models.ParticipantInfo] = field(default_factory=dict)
    sessions: dict[str, pb.Session] = field(default_factory=dict)
    reports: dict[str, int] = field(default_factory=dict)
    """The last SfuReport seq applied to this room, per reporter (an SFU process), newest last."""
    # change tracking -------------------------------------------------------------------------
    created: bool = False
    deleted: bool = False
    touched: bool = False
    """Write the record even without other changes (e.g. to re-arm its deadline)."""
    dirty: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    events: list[pb.RoomEvent] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.room.name

    # queries ---------------------------------------------------------------------------------
    def by_sid(self, sid: str) -> models.ParticipantInfo | None:
        for participant in self.participants.values():
            if participant.sid == sid:
                return participant
        return None

    def keeps_open(self) -> bool:
        return any(not is_dependent(p) for p in self.participants.values())

    def room_view(self) -> models.Room:
        """The Room message as the API and events show it (live counts filled in)."""
        view = models.Room()
        view.CopyFrom(self.room)
        view.num_participants = len(self.participants)
        view.num_publishers = sum(1 for p in self.participants.values() if p.tracks)
        return view

    # changes ---------------------------------------------------------------------------------
    def applied(self, reporter: str, seq: int) -> None:
        """Remember the report ``seq`` of ``reporter`` (the last ``MAX_REPORTERS`` reporters)."""
        self.reports.pop(reporter, None)
        self.reports[reporter] = seq
        while len(self.reports) > MAX_REPORTERS:
            del self.reports[next(iter(self.reports))]
        self.touched = True

    def put_participant(self, participant: models.ParticipantInfo) -> None:
        self.participants[participant.identity] = participant
        participant.is_publisher = bool(participant.tracks)
        self.dirty.add(participant.identity)
        self.removed.discard(participant.identity)
        if not is_dependent(participant):
            self.had_participant = True

    def drop_participant(self, identity: str) -> models.ParticipantInfo | None:
        participant = self.participants.pop(identity, None)
        self.sessions.pop(identity, None)
        self.dirty.discard(identity)
        self.removed.add(identity)
        if participant is not None and not is_dependent(participant) and not self.keeps_open():
            self.last_left_ms = now_ms()
        return participant

    def emit(
        self,
        event: str,
        *,
        participant: models.ParticipantInfo | None = None,
        track: models.TrackInfo | None = None,
        with_config: bool = False,
    ) -> pb.RoomEvent:
        self.seq += 1
        ms = now_ms()
        out = pb.RoomEvent(
            id=new_id(EVENT_PREFIX),
            event=event,
            created_at=ms // 1000,
            created_at_ms=ms,
            room_sequence=self.seq,
            room=self.room_view(),
            node_id=self.node_id,
        )
        if participant is not None:
            out.participant.CopyFrom(participant)
        if track is not None:
            out.track.CopyFrom(track)
        if with_config:
            out.room_config.CopyFrom(self.config)
        self.events.append(out)
        return out

    def compute_deadline(self) -> int:
        """When this room closes if nothing changes (LiveKit's CloseIfEmpty); 0 while kept open."""
        if self.keeps_open():
            return 0
        if self.had_participant and self.last_left_ms:
            return self.last_left_ms + self.room.departure_timeout * 1000
        return self.room.creation_time_ms + self.room.empty_timeout * 1000
