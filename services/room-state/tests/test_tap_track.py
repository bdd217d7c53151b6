"""TapTrack: room-state forwards an egress worker's TapRequest to the room's hosting node as
``RoomCommand.tap`` and answers with the node's TapResponse; the node's errors pass through and an
unknown room is not_found. On the MemoryBus, with a fake node and a store that only loads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from livekit.protocol import models

from parley.bus import ErrorCode, MemoryBus, RpcError, rpcs, serve_all
from parley.config import RoomConfig
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.room_state.commands import NodeCommands
from parley.room_state.handlers import Handlers
from parley.room_state.nodes import NodeRegistry
from parley.room_state.outbox import OutboxRelay
from parley.room_state.record import RoomRecord
from parley.room_state.served import SERVES

pytestmark = pytest.mark.unit

NODE = "NODE_a"


class LoadOnlyStore:
    """The one Store method TapTrack uses."""

    def __init__(self) -> None:
        self.rooms: dict[str, RoomRecord] = {}

    async def load(self, name: str) -> RoomRecord | None:
        return self.rooms.get(name)


@dataclass
class Setup:
    bus: MemoryBus
    store: LoadOnlyStore
    commands: list[node_pb2.RoomCommand] = field(default_factory=list)


@pytest_asyncio.fixture
async def setup() -> AsyncIterator[Setup]:
    bus = MemoryBus("room-state-tap")
    store = LoadOnlyStore()
    handlers = Handlers(
        store,  # type: ignore[arg-type]
        NodeRegistry(bus, store, ttl=30),  # type: ignore[arg-type]
        NodeCommands(bus, 2.0),
        OutboxRelay(bus, store, interval=1, lock_ttl=5),  # type: ignore[arg-type]
        RoomConfig(),
    )
    state = Setup(bus, store)

    async def node(command: node_pb2.RoomCommand) -> node_pb2.RoomCommandResult:
        state.commands.append(command)
        if command.tap.track_sid == "TR_gone":
            raise RpcError(ErrorCode.NOT_FOUND, "track TR_gone not found in room r")
        result = node_pb2.RoomCommandResult()
        if not command.tap.stop:
            result.tap.CopyFrom(
                node_pb2.TapResponse(
                    mime_type="audio/opus",
                    payload_type=111,
                    clock_rate=48000,
                    channels=2,
                    ssrc=1234,
                    source_host="127.0.0.1",
                    source_port=40000,
                    track=models.TrackInfo(sid=command.tap.track_sid),
                    participant_identity="alice",
                )
            )
        return result

    await serve_all(bus, SERVES, handlers.routes())
    await bus.serve(rpcs.ROOM_COMMAND, node, topic=NODE)
    store.rooms["r"] = RoomRecord(room=models.Room(name="r", sid="RM_r"), node_id=NODE)
    yield state
    await bus.aclose()


def request(track_sid: str = "TR_a", *, room: str = "r", stop: bool = False) -> node_pb2.TapRequest:
    return node_pb2.TapRequest(
        room_name=room, track_sid=track_sid, tap_id="EG_1", host="127.0.0.1", port=5004, stop=stop
    )


async def test_tap_track_is_forwarded_to_the_hosting_node(setup: Setup) -> None:
    response = await setup.bus.call(rpcs.TAP_TRACK, request())
    (command,) = setup.commands
    assert command.room_name == "r" and command.WhichOneof("command") == "tap"
    assert command.tap == request()
    assert (response.mime_type, response.payload_type, response.ssrc) == ("audio/opus", 111, 1234)
    assert response.track.sid == "TR_a" and response.participant_identity == "alice"
    stopped = await setup.bus.call(rpcs.TAP_TRACK, request(stop=True))
    assert stopped == node_pb2.TapResponse() and setup.commands[-1].tap.stop


async def test_the_nodes_errors_reach_the_caller(setup: Setup) -> None:
    with pytest.raises(RpcError) as gone:
        await setup.bus.call(rpcs.TAP_TRACK, request("TR_gone"))
    assert (
        gone.value.code is ErrorCode.NOT_FOUND and gone.value.message == "track TR_gone not found in room r"
    )


async def test_an_unknown_room_is_not_found(setup: Setup) -> None:
    with pytest.raises(RpcError) as missing:
        await setup.bus.call(rpcs.TAP_TRACK, request(room="nowhere"))
    assert missing.value.code is ErrorCode.NOT_FOUND
    assert missing.value.message == "requested room does not exist"
    setup.store.rooms["unplaced"] = RoomRecord(room=models.Room(name="unplaced"))
    with pytest.raises(RpcError) as unplaced:
        await setup.bus.call(rpcs.TAP_TRACK, request(room="unplaced"))
    assert unplaced.value.code is ErrorCode.NOT_FOUND
    assert setup.commands == []
