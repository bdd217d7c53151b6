"""room-state's handlers served on a MemoryBus over a real Valkey: the RPCs as callers see them
(answers, error codes), the RoomCommands they send a node, and the events the outbox relays.

Valkey is a real process, so this is an integration test; the bus is in memory (no nats-server)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from livekit.protocol import models
from livekit.protocol import room as lk

from parley.bus import Delivery, ErrorCode, MemoryBus, RpcError, rpcs, serve_all, subjects
from parley.config import RoomConfig
from parley.observability import TaskSet
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.room_state.commands import NodeCommands
from parley.room_state.handlers import Handlers
from parley.room_state.nodes import NodeRegistry
from parley.room_state.outbox import OutboxRelay
from parley.room_state.served import SERVES
from parley.room_state.store import Store
from parley.testing import poll_until

pytestmark = pytest.mark.integration

NODE = "NODE_a"


@dataclass
class RoomState:
    bus: MemoryBus
    commands: list[node_pb2.RoomCommand]
    events: list[pb.RoomEvent]


@pytest_asyncio.fixture
async def room_state(redis_client: aioredis.Redis) -> AsyncIterator[RoomState]:
    bus = MemoryBus("room-state-unit")
    tasks = TaskSet("room-state-unit")
    store = Store(redis_client, "unit:")
    nodes = NodeRegistry(bus, store, ttl=30)
    relay = OutboxRelay(bus, store, interval=0.05, lock_ttl=5)
    handlers = Handlers(store, nodes, NodeCommands(bus, 2.0), relay, RoomConfig(empty_timeout=300))
    state = RoomState(bus, [], [])

    async def on_command(command: node_pb2.RoomCommand) -> node_pb2.RoomCommandResult:
        state.commands.append(command)
        return node_pb2.RoomCommandResult()

    async def on_event(d: Delivery) -> None:
        state.events.append(pb.RoomEvent.FromString(d.data))

    await nodes.start()
    await serve_all(bus, SERVES, handlers.routes())
    await bus.serve(rpcs.ROOM_COMMAND, on_command, topic=NODE)  # the node hosting the rooms
    await bus.subscribe(subjects.ROOM_EVENTS_ALL, on_event)
    tasks.spawn(relay.run(), name="outbox-relay")
    now = int(time.time())
    await bus.publish(subjects.SFU_NODES, node_pb2.NodeStats(node_id=NODE, load=0.1, updated_at=now))
    await poll_until(lambda: nodes.live(), message="the node's heartbeat")
    yield state
    await tasks.aclose()
    await nodes.aclose()
    await bus.aclose()


async def join(bus: MemoryBus, identity: str, room: str = "r1") -> pb.JoinRoomResponse:
    req = pb.JoinRoomRequest(
        room_name=room, create_if_missing=True, participant=models.ParticipantInfo(identity=identity)
    )
    return await bus.call(rpcs.JOIN_ROOM, req)


async def test_join_then_the_room_api_sees_the_participant(room_state: RoomState) -> None:
    bus = room_state.bus
    joined = await join(bus, "alice")
    assert (
        joined.node_id == NODE
        and joined.participant.sid.startswith("PA_")
        and joined.room.sid.startswith("RM_")
    )
    people = await bus.call(rpcs.LIST_PARTICIPANTS, lk.ListParticipantsRequest(room="r1"))
    assert [p.identity for p in people.participants] == ["alice"]
    found = await bus.call(
        rpcs.LOCATE_PARTICIPANT,
        pb.LocateParticipantRequest(room_name="r1", participant_sid=joined.participant.sid, identity="alice"),
    )
    assert found.node_id == NODE
    await poll_until(
        lambda: [e.event for e in room_state.events][:2] == ["room_started", "participant_connected"],
        message="room_started then participant_connected (a successful JoinRoom) relayed",
    )
    assert [e.room_sequence for e in room_state.events] == sorted(e.room_sequence for e in room_state.events)


async def test_errors_reach_the_caller_with_their_code(room_state: RoomState) -> None:
    bus = room_state.bus
    with pytest.raises(RpcError) as missing:
        await bus.call(rpcs.GET_PARTICIPANT, lk.RoomParticipantIdentity(room="nowhere", identity="x"))
    assert missing.value.code is ErrorCode.NOT_FOUND
    await join(bus, "alice")
    with pytest.raises(RpcError) as nobody:
        await bus.call(rpcs.GET_PARTICIPANT, lk.RoomParticipantIdentity(room="r1", identity="bob"))
    assert nobody.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(RpcError) as empty:
        await bus.call(rpcs.REPORT, pb.SfuReport(reporter_id="SR_x", seq=1))
    assert empty.value.code is ErrorCode.INVALID_ARGUMENT
    with pytest.raises(RpcError) as malformed:
        await bus.request(rpcs.JOIN_ROOM.subject(), b"\xff\xff", pb.JoinRoomResponse)
    assert malformed.value.code is ErrorCode.MALFORMED


async def test_live_session_methods_command_the_hosting_node(room_state: RoomState) -> None:
    bus = room_state.bus
    await join(bus, "alice")
    await bus.call(rpcs.REMOVE_PARTICIPANT, lk.RoomParticipantIdentity(room="r1", identity="alice"))
    [command] = room_state.commands
    assert command.room_name == "r1" and command.remove_participant.identity == "alice"


async def test_a_report_applies_once_per_reporter_and_seq(room_state: RoomState) -> None:
    bus = room_state.bus
    joined = await join(bus, "alice")
    track = models.TrackInfo(sid="TR_a1", type=models.TrackType.AUDIO, name="mic")
    report = pb.SfuReport(
        reporter_id="SR_x",
        seq=1,
        track_published=pb.TrackPublishedRequest(
            room_name="r1", participant_sid=joined.participant.sid, track=track
        ),
    )
    await bus.call(rpcs.REPORT, report)
    await bus.call(rpcs.REPORT, report)  # the answer was lost: sent again
    got = await bus.call(rpcs.GET_PARTICIPANT, lk.RoomParticipantIdentity(room="r1", identity="alice"))
    assert [t.sid for t in got.tracks] == ["TR_a1"]
    await poll_until(
        lambda: any(e.event == "track_published" for e in room_state.events), message="track_published"
    )
    assert [e.event for e in room_state.events].count("track_published") == 1
