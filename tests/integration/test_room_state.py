"""room-state over the real bus and Valkey: joins, placement, events through the outbox, deadlines."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from livekit.protocol import models
from livekit.protocol import room as lk

from parley.bus import Delivery, ErrorCode, NatsBus, RpcError, connect, rpcs, subjects
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.testing import Stack, poll_until

pytestmark = pytest.mark.integration

Kind = models.ParticipantInfo.Kind
State = models.ParticipantInfo.State


async def heartbeat(bus: NatsBus, node_id: str, load: float = 0.1, draining: bool = False) -> None:
    now = int(time.time())
    stats = node_pb2.NodeStats(node_id=node_id, load=load, started_at=now, updated_at=now, draining=draining)
    await bus.publish(subjects.SFU_NODES, stats)


async def join(
    bus: NatsBus, room: str, identity: str, kind: int = Kind.STANDARD, connection: str = "", **kw: object
) -> pb.JoinRoomResponse:
    """A join from the connection ``connection`` (default ``C_<identity>``): a join repeated from the
    same connection is the same join (the edge asking again), another connection a new one."""
    req = pb.JoinRoomRequest(
        room_name=room,
        participant=models.ParticipantInfo(identity=identity, kind=kind),  # type: ignore[arg-type]
        edge_id="EDGE_test",
        connection_id=connection or f"C_{identity}",
        **kw,  # type: ignore[arg-type]
    )
    return await bus.call(rpcs.JOIN_ROOM, req, timeout=10)


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack(
        services=["room-state"],
        config={"room": {"empty_timeout": 3, "departure_timeout": 1}},
    )


@pytest_asyncio.fixture
async def sbus(stack: Stack) -> AsyncIterator[NatsBus]:
    assert stack.nats is not None
    b = await connect(stack.nats.url, "test-room-state")
    yield b
    await b.aclose()


@pytest_asyncio.fixture
async def events(sbus: NatsBus) -> AsyncIterator[list[pb.RoomEvent]]:
    seen: list[pb.RoomEvent] = []

    async def on_event(d: Delivery) -> None:
        seen.append(pb.RoomEvent.FromString(d.data))
        await d.ack()

    await poll_until(lambda: _stream_exists(sbus), timeout=15, message="events stream")
    sbus.consume(subjects.EVENTS_STREAM, "test-room-state", on_event, filter_subject=subjects.ROOM_EVENTS_ALL)
    yield seen


async def _stream_exists(bus: NatsBus) -> bool:
    try:
        await bus.jetstream.stream_info(subjects.EVENTS_STREAM)
        return True
    except Exception:
        return False


def names(events: list[pb.RoomEvent], room: str) -> list[str]:
    return [e.event for e in events if e.room.name == room]


async def test_join_without_node_is_unavailable(sbus: NatsBus) -> None:
    with pytest.raises(RpcError) as err:
        await join(sbus, "no-node", "alice")
    assert err.value.code is ErrorCode.UNAVAILABLE
    assert err.value.message == "no SFU node available"


async def test_join_lifecycle_events_and_placement(sbus: NatsBus, events: list[pb.RoomEvent]) -> None:
    await heartbeat(sbus, "SFU_busy", load=0.9)
    await heartbeat(sbus, "SFU_idle", load=0.1)
    await heartbeat(sbus, "SFU_draining", load=0.0, draining=True)

    probes = iter(range(1000))

    async def all_nodes_seen() -> bool:
        # A new throwaway room goes to the least loaded node once every heartbeat has arrived.
        try:
            return (await join(sbus, f"probe-{next(probes)}", "probe")).node_id == "SFU_idle"
        except RpcError:
            return False

    await poll_until(all_nodes_seen, timeout=10, message="heartbeats of all three nodes")
    first = await join(sbus, "r1", "alice", room_config=lk.RoomConfiguration(metadata="from-token"))
    assert first.node_id == "SFU_idle"
    assert first.room_created
    assert first.room.sid.startswith("RM_") and first.room.metadata == "from-token"
    assert first.participant.sid.startswith("PA_")
    assert first.participant.state == State.JOINED
    assert first.participant.joined_at > 0 and first.participant.joined_at_ms > 0

    # The same join asked again (the edge got no answer): the same participant, no event.
    again = await join(sbus, "r1", "alice")
    assert again.participant.sid == first.participant.sid and not again.HasField("replaced")

    # Same identity from another connection: the new one replaces the old session.
    second = await join(sbus, "r1", "alice", connection="C_alice_2")
    assert not second.room_created
    assert second.replaced.participant_sid == first.participant.sid
    assert second.replaced.connection_id == "C_alice"
    sid = second.participant.sid

    await sbus.call(rpcs.PARTICIPANT_ACTIVE, pb.ParticipantActiveRequest(room_name="r1", participant_sid=sid))
    track = models.TrackInfo(sid="TR_a1", type=models.TrackType.AUDIO, name="mic")
    await sbus.call(
        rpcs.TRACK_PUBLISHED, pb.TrackPublishedRequest(room_name="r1", participant_sid=sid, track=track)
    )
    got = await sbus.call(rpcs.GET_PARTICIPANT, lk.RoomParticipantIdentity(room="r1", identity="alice"))
    assert isinstance(got, models.ParticipantInfo)
    assert got.state == State.ACTIVE and [t.sid for t in got.tracks] == ["TR_a1"]
    await sbus.call(
        rpcs.TRACK_UNPUBLISHED,
        pb.TrackUnpublishedRequest(room_name="r1", participant_sid=sid, track_sid="TR_a1"),
    )
    await sbus.call(rpcs.PARTICIPANT_LEFT, pb.ParticipantLeftRequest(room_name="r1", participant_sid=sid))

    expected = [
        "room_started",
        "participant_connected",
        "participant_connection_aborted",
        "participant_connected",
        "participant_joined",
        "track_published",
        "track_unpublished",
        "participant_left",
        "room_finished",
    ]
    await poll_until(lambda: names(events, "r1") == expected, timeout=15, message=f"events {expected}")
    ours = [e for e in events if e.room.name == "r1"]
    assert [e.room_sequence for e in ours] == list(range(1, len(expected) + 1))
    assert all(e.id.startswith("EV_") for e in ours)
    assert ours[0].room_config.metadata == "from-token"
    assert ours[5].track.sid == "TR_a1" and ours[5].participant.identity == "alice"
    assert ours[4].room.num_participants == 1


async def test_max_participants_and_missing_room(sbus: NatsBus, stack: Stack) -> None:
    await heartbeat(sbus, "SFU_a")
    created = await sbus.call(rpcs.CREATE_ROOM, lk.CreateRoomRequest(name="small", max_participants=1))
    assert isinstance(created, models.Room) and created.max_participants == 1
    await poll_until(lambda: _joins(sbus, "small", "p1"), timeout=10, message="first join")
    with pytest.raises(RpcError) as err:
        await join(sbus, "small", "p2")
    assert err.value.code is ErrorCode.RESOURCE_EXHAUSTED


async def _joins(bus: NatsBus, room: str, identity: str) -> bool:
    try:
        await join(bus, room, identity)
        return True
    except RpcError:
        return False


async def test_agents_do_not_keep_room_open(sbus: NatsBus, events: list[pb.RoomEvent]) -> None:
    await heartbeat(sbus, "SFU_a")
    await poll_until(lambda: _joins(sbus, "agents", "human"), timeout=10, message="human joins")
    agent = await join(sbus, "agents", "agent-1", kind=Kind.AGENT)
    human = await sbus.call(rpcs.GET_PARTICIPANT, lk.RoomParticipantIdentity(room="agents", identity="human"))
    assert isinstance(human, models.ParticipantInfo)
    start = time.monotonic()
    await sbus.call(
        rpcs.PARTICIPANT_LEFT, pb.ParticipantLeftRequest(room_name="agents", participant_sid=human.sid)
    )
    # departure_timeout is 1 s: the room closes although the agent is still in it.
    await poll_until(lambda: "room_finished" in names(events, "agents"), timeout=10, message="room_finished")
    assert time.monotonic() - start >= 0.9
    finished = [e for e in events if e.room.name == "agents"]
    assert any(
        e.event == "participant_connection_aborted" and e.participant.sid == agent.participant.sid
        for e in finished
    )
    listed = await sbus.call(rpcs.LIST_ROOMS, lk.ListRoomsRequest(names=["agents"]))
    assert isinstance(listed, lk.ListRoomsResponse) and list(listed.rooms) == []


async def test_concurrent_create_gives_one_room(sbus: NatsBus) -> None:
    results = await asyncio.gather(
        *[sbus.call(rpcs.CREATE_ROOM, lk.CreateRoomRequest(name="race")) for _ in range(8)]
    )
    sids = {r.sid for r in results if isinstance(r, models.Room)}
    assert len(sids) == 1
