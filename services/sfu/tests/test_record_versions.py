"""RoomCommands and the node's own changes against the participant record room-state owns.

A command's change goes to clients with the version room-state wrote (never below what they hold);
a command that changes nothing here sends nothing; every change the node makes is reported to
room-state as a delta (room-state finds a command's own change already written: no event there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf.message import Message
from livekit.protocol import models, rtc
from livekit.protocol import room as lk

from parley.observability import TaskSet
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.sfu import commands, metadata, publish
from parley.sfu.config import SfuConfig
from parley.sfu.media.fakes import FakePublishedMedia
from parley.sfu.participant import Participant, PublishedTrack
from parley.sfu.room import Room, RoomHost

pytestmark = pytest.mark.unit


class SilentBus:
    async def publish(self, subject: str, message: Message) -> None:
        pass


class FakeOutbox:
    def __init__(self, sid: str) -> None:
        self.connection_id = f"CO_{sid}"
        self.sent: list[rtc.SignalResponse] = []

    def send(self, response: rtc.SignalResponse) -> None:
        self.sent.append(response)

    def close(self, response: rtc.SignalResponse | None = None) -> None:
        pass


class RecordingReporter:
    """The deltas the node would report to room-state."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, Any]] = []

    def participant_updated(
        self, room: str, sid: str, *, name: str, metadata: str, attributes: Mapping[str, str]
    ) -> None:
        self.reports.append(("participant_updated", (sid, name, metadata, dict(attributes))))

    def track_updated(self, room: str, sid: str, track_sid: str, muted: bool) -> None:
        self.reports.append(("track_updated", (sid, track_sid, muted)))

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kw: self.reports.append((name, args))


@pytest_asyncio.fixture
async def room() -> AsyncIterator[Room]:
    tasks = TaskSet("test")
    host = RoomHost(
        bus=SilentBus(),  # type: ignore[arg-type]
        config=SfuConfig(),
        node_id="N_test",
        reporter=RecordingReporter(),  # type: ignore[arg-type]
        on_empty=lambda room: None,
    )
    room = Room(host, models.Room(name="r", sid="RM_test"))
    yield room
    await room.aclose()
    await tasks.aclose()


def add(room: Room, identity: str, version: int) -> Participant:
    permission = models.ParticipantPermission(can_publish=True, can_subscribe=True, can_update_metadata=True)
    info = models.ParticipantInfo(
        sid=f"PA_{identity}", identity=identity, permission=permission, version=version
    )
    p = Participant(
        info=info,
        outbox=FakeOutbox(info.sid),  # type: ignore[arg-type]
        edge_id="e",
        auto_subscribe=False,
        protocol=16,
        client_info=models.ClientInfo(),
        single_pc=True,
    )
    p.active = True
    room.participants[p.sid] = p
    return p


def updates_of(p: Participant, about: Participant) -> list[models.ParticipantInfo]:
    """The ParticipantInfo of ``about`` that ``p`` was sent, and forgets them."""
    sent: list[rtc.SignalResponse] = p.outbox.sent  # type: ignore[attr-defined]
    found = [
        i
        for m in sent
        if m.WhichOneof("message") == "update"
        for i in m.update.participants
        if i.sid == about.sid
    ]
    sent.clear()
    return found


def reports(room: Room) -> list[tuple[str, Any]]:
    reporter: RecordingReporter = room.reporter  # type: ignore[assignment]
    out = list(reporter.reports)
    reporter.reports.clear()
    return out


def mute(identity: str, track_sid: str, muted: bool, version: int) -> node_pb2.RoomCommand:
    command = node_pb2.RoomCommand(room_name="r", participant_version=version)
    command.mute_published_track.CopyFrom(
        lk.MuteRoomTrackRequest(room="r", identity=identity, track_sid=track_sid, muted=muted)
    )
    return command


def update(identity: str, version: int, **fields: Any) -> node_pb2.RoomCommand:
    command = node_pb2.RoomCommand(room_name="r", participant_version=version)
    command.update_participant.CopyFrom(lk.UpdateParticipantRequest(room="r", identity=identity, **fields))
    return command


def with_mic(room: Room, version: int) -> tuple[Participant, Participant]:
    alice, bob = add(room, "alice", version), add(room, "bob", 1)
    info = models.TrackInfo(sid="TR_mic", type=models.TrackType.AUDIO)
    alice.published["TR_mic"] = PublishedTrack(info=info, up=FakePublishedMedia("audio"))
    return alice, bob


async def test_mute_command_carries_room_states_version_and_a_repeat_sends_nothing(room: Room) -> None:
    alice, bob = with_mic(room, version=3)
    await commands.execute(room, mute("alice", "TR_mic", True, version=7))
    seen = updates_of(bob, alice)
    assert [(i.version, [t.muted for t in i.tracks]) for i in seen] == [(7, [True])]
    assert alice.info.version == 7
    # reported as a delta: room-state already wrote it, so there it changes nothing
    assert reports(room) == [("track_updated", ("PA_alice", "TR_mic", True))]
    await commands.execute(room, mute("alice", "TR_mic", True, version=7))
    assert updates_of(bob, alice) == [] and reports(room) == [] and alice.info.version == 7


async def test_a_command_never_lowers_the_version_clients_hold(room: Room) -> None:
    alice, bob = with_mic(room, version=9)  # the node's own changes not yet applied by room-state
    await commands.execute(room, mute("alice", "TR_mic", True, version=8))
    assert [i.version for i in updates_of(bob, alice)] == [10]  # strictly newer than what clients hold


async def test_update_participant_command(room: Room) -> None:
    alice, bob = with_mic(room, version=4)
    await commands.execute(room, update("alice", 5, metadata="m1", attributes={"role": "host"}))
    assert [(i.version, i.metadata) for i in updates_of(bob, alice)] == [(5, "m1")]
    assert reports(room) == [("participant_updated", ("PA_alice", "", "m1", {"role": "host"}))]
    await commands.execute(room, update("alice", 5, metadata="m1", attributes={"role": "host"}))
    assert updates_of(bob, alice) == [] and reports(room) == []
    # a permission change alone is a change (room-state sends it; nothing to report back)
    revoke = models.ParticipantPermission(can_subscribe=True, can_publish=True)
    await commands.execute(room, update("alice", 6, permission=revoke))
    assert [(i.version, i.permission.can_update_metadata) for i in updates_of(bob, alice)] == [(6, False)]
    assert reports(room) == []


async def test_the_nodes_own_changes_count_up_and_are_reported_as_deltas(room: Room) -> None:
    alice, bob = with_mic(room, version=4)
    request = rtc.UpdateParticipantMetadata(metadata="mine", attributes={"mood": "happy"}, request_id=1)
    metadata.update_own(room, alice, request)
    assert [i.version for i in updates_of(bob, alice)] == [5]
    assert reports(room) == [("participant_updated", ("PA_alice", "", "mine", {"mood": "happy"}))]
    metadata.update_own(room, alice, request)
    assert updates_of(bob, alice) == [] and reports(room) == []
    assert publish.set_muted(room, alice, "TR_mic", True)
    assert [i.version for i in updates_of(bob, alice)] == [6]
    assert reports(room) == [("track_updated", ("PA_alice", "TR_mic", True))]
    assert publish.set_muted(room, alice, "TR_mic", True)  # the SDK echoing a server mute
    assert updates_of(bob, alice) == [] and reports(room) == []
