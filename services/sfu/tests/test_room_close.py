"""``Room.aclose`` lets the peer connection closes it starts finish (bounded by PC_CLOSE_TIMEOUT_S)
instead of cancelling them with the room's tasks: a connected publisher PC ends ``closed``. A real
aiortc client on loopback; a fake bus records nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection
from google.protobuf.message import Message
from livekit.protocol import models

from parley.config import RtcConfig
from parley.observability import TaskSet
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.protocol.gen.turn.v1 import turn_pb2
from parley.sfu import engine
from parley.sfu.config import SfuConfig
from parley.sfu.room import Room, RoomHost
from parley.sfu.state_reporter import StateReporter
from parley.testing import poll_until

pytestmark = pytest.mark.unit


class FakeBus:
    async def publish(self, subject: str, message: Message) -> None:
        pass

    async def request(
        self, subject: str, message: Message, response_type: type[Message], **_: Any
    ) -> Message:
        return response_type()

    async def call(self, rpc: Any, message: Message, **_: Any) -> Message:
        return rpc.response()  # type: ignore[no-any-return]


@pytest_asyncio.fixture
async def room() -> AsyncIterator[Room]:
    media = engine.configure(RtcConfig(use_loopback=True, port_range_start=45000, port_range_end=45999))
    tasks = TaskSet("test")
    bus = FakeBus()
    host = RoomHost(
        bus=bus,  # type: ignore[arg-type]
        config=SfuConfig(),
        node_id="N_test",
        reporter=StateReporter(bus, tasks),  # type: ignore[arg-type]
        on_empty=lambda room: None,
        media=media,
    )
    room = Room(host, models.Room(name="r", sid="RM_test"))
    yield room
    await room.aclose()
    await tasks.aclose()


async def test_aclose_finishes_closing_connected_peer_connections(room: Room) -> None:
    request = relay_pb2.StartSessionRequest(
        connection_id="CO_a",
        edge_id="E_test",
        room=room.info,
        participant=models.ParticipantInfo(
            sid="PA_a", identity="a", permission=models.ParticipantPermission(can_publish=True)
        ),
        protocol=2,
    )
    await room.call(lambda: room.join(request, turn_pb2.IceServersResponse()))
    p = room.participants["PA_a"]
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        client.addTrack(AudioStreamTrack())
        client.createDataChannel("_reliable")
        await client.setLocalDescription(await client.createOffer())
        pc = room.ensure_publisher_pc(p)
        await pc.setRemoteDescription(client.localDescription)
        await pc.setLocalDescription(await pc.createAnswer())
        await client.setRemoteDescription(pc.localDescription)
        await poll_until(lambda: pc.connectionState == "connected", timeout=20, message="publisher PC up")

        await room.aclose()
        assert pc.connectionState == "closed"
        assert pc.iceConnectionState == "closed"
        assert not room.tasks  # nothing left running, nothing was cancelled half way
    finally:
        await client.close()
