"""EdgeWatch: an edge that no longer subscribes to its signal subject (NATS no-responders, twice)
counts as a signalling close for its participants; a live edge (the probe times out) does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf.message import Message
from livekit.protocol import models

from parley.bus import NoResponders, RpcTimeout, subjects
from parley.observability import TaskSet
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.protocol.gen.turn.v1 import turn_pb2
from parley.sfu.config import SfuConfig, SfuSection
from parley.sfu.edge_watch import EdgeWatch
from parley.sfu.room import Room, RoomHost
from parley.sfu.state_reporter import StateReporter
from parley.testing import poll_until

pytestmark = pytest.mark.unit


class FakeBus:
    def __init__(self) -> None:
        self.dead: set[str] = set()
        self.probes: list[str] = []

    async def publish(self, subject: str, message: Message) -> None:
        pass

    async def request(
        self, subject: str, message: Message, response_type: type[Message], **_: Any
    ) -> Message:
        if subject.startswith("parley.edge."):
            self.probes.append(subject)
            if subject in self.dead:
                raise NoResponders(subject)
            raise RpcTimeout(subject)  # a live edge never answers
        return response_type()


@pytest_asyncio.fixture
async def room() -> AsyncIterator[tuple[Room, FakeBus]]:
    bus = FakeBus()
    tasks = TaskSet("test")
    host = RoomHost(
        bus=bus,  # type: ignore[arg-type]
        config=SfuConfig(sfu=SfuSection(resume_window=0.3)),
        node_id="N_test",
        reporter=StateReporter(bus, tasks),  # type: ignore[arg-type]
        on_empty=lambda room: None,
    )
    room = Room(host, models.Room(name="r", sid="RM_test"))
    yield room, bus
    await room.aclose()
    await tasks.aclose()


async def _join(room: Room, sid: str, edge: str) -> None:
    request = relay_pb2.StartSessionRequest(
        connection_id=f"CO_{sid}",
        edge_id=edge,
        room=room.info,
        participant=models.ParticipantInfo(sid=sid, identity=sid),
        protocol=2,
    )
    await room.call(lambda: room.join(request, turn_pb2.IceServersResponse()))
    p = room.participants[sid]
    await room.call(lambda: room._activate(p))


async def test_a_dead_edges_participants_wait_for_a_resume_then_leave(room: tuple[Room, FakeBus]) -> None:
    r, bus = room
    await _join(r, "PA_dead", "E_dead")
    await _join(r, "PA_live", "E_live")
    watch = EdgeWatch(bus, lambda: [r], interval=60)  # type: ignore[arg-type]
    bus.dead = {subjects.edge_signal("E_dead")}
    assert await watch.check() == []  # one miss is not enough
    assert await watch.check() == ["E_dead"]
    await poll_until(lambda: r.participants["PA_dead"].signal_lost_at is not None, timeout=5, message="lost")
    assert r.participants["PA_live"].signal_lost_at is None
    # the resume window passes without a resume: removed
    await poll_until(lambda: "PA_dead" not in r.participants, timeout=5, message="removed")
    assert "PA_live" in r.participants
    # a participant waiting for a resume is not probed for
    assert await watch.check() == []
    assert bus.probes[-1] == subjects.edge_signal("E_live")
