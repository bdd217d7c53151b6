"""sfu.join_timeout: a participant that never becomes ACTIVE is removed with JOIN_FAILURE (a leave to
the client, ParticipantLeft to room-state); one that becomes ACTIVE keeps its session. A fake bus
records what the room sends; no peer connection is created (v0, protocol 2: publisher primary)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf.message import Message
from livekit.protocol import models, rtc

from parley.bus import Rpc
from parley.observability import TaskSet
from parley.protocol.gen.room.v1 import room_state_pb2 as rs
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.protocol.gen.turn.v1 import turn_pb2
from parley.sfu.config import SfuConfig, SfuSection
from parley.sfu.room import Room, RoomHost
from parley.sfu.state_reporter import StateReporter
from parley.testing import poll_until

pytestmark = pytest.mark.unit


class FakeBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, Message]] = []
        self.requests: list[tuple[str, Message]] = []

    async def publish(self, subject: str, message: Message) -> None:
        self.published.append((subject, message))

    async def request(
        self, subject: str, message: Message, response_type: type[Message], **_: Any
    ) -> Message:
        self.requests.append((subject, message))
        return response_type()

    async def call(self, rpc: Rpc[Any, Any], message: Message, **kw: Any) -> Message:
        """``Bus.call`` as the request it makes on the wire."""
        return await self.request(rpc.subject(kw.pop("topic", "")), message, rpc.response, **kw)


@pytest_asyncio.fixture
async def setup() -> AsyncIterator[tuple[Room, FakeBus]]:
    bus = FakeBus()
    tasks = TaskSet("test")
    config = SfuConfig(sfu=SfuSection(join_timeout=0.2))
    host = RoomHost(
        bus=bus,  # type: ignore[arg-type]
        config=config,
        node_id="N_test",
        reporter=StateReporter(bus, tasks),  # type: ignore[arg-type]
        on_empty=lambda room: None,
    )
    room = Room(host, models.Room(name="r", sid="RM_test"))
    yield room, bus
    await room.aclose()
    await tasks.aclose()


async def join(room: Room, sid: str) -> None:
    request = relay_pb2.StartSessionRequest(
        connection_id=f"CO_{sid}",
        edge_id="E_test",
        room=room.info,
        participant=models.ParticipantInfo(
            sid=sid,
            identity=sid,
            permission=models.ParticipantPermission(can_publish=True, can_subscribe=True),
        ),
        auto_subscribe=True,
        protocol=2,
    )
    await room.call(lambda: room.join(request, turn_pb2.IceServersResponse()))


def leaves(bus: FakeBus) -> list[int]:
    found = []
    for _, message in bus.published:
        if isinstance(message, relay_pb2.ServerSignal) and message.response:
            response = rtc.SignalResponse.FromString(message.response)
            if response.WhichOneof("message") == "leave":
                found.append(int(response.leave.reason))
    return found


async def test_inactive_participant_is_removed(setup: tuple[Room, FakeBus]) -> None:
    room, bus = setup
    await join(room, "PA_idle")
    await poll_until(lambda: "PA_idle" not in room.participants, timeout=5, message="removed")
    assert leaves(bus) == [models.DisconnectReason.JOIN_FAILURE]
    await poll_until(
        lambda: any(isinstance(m, rs.SfuReport) and m.HasField("participant_left") for _, m in bus.requests),
        timeout=5,
        message="left",
    )
    left = next(
        m.participant_left
        for _, m in bus.requests
        if isinstance(m, rs.SfuReport) and m.HasField("participant_left")
    )
    assert left.participant_sid == "PA_idle" and left.reason == models.DisconnectReason.JOIN_FAILURE


async def test_active_participant_keeps_its_session(setup: tuple[Room, FakeBus]) -> None:
    room, bus = setup
    await join(room, "PA_live")
    p = room.participants["PA_live"]
    timer = p.join_timer
    assert timer is not None and not timer.done()
    await room.call(lambda: room._activate(p))
    assert p.join_timer is None
    await poll_until(lambda: timer.done(), timeout=5, message="timer cancelled")
    assert timer.cancelled()
    assert "PA_live" in room.participants and leaves(bus) == []
