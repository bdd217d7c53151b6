"""room-state under faults and concurrency: a SIGKILL mid-run, and two instances writing one room."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from livekit.protocol import models
from livekit.protocol import room as lk

from parley.bus import Delivery, NatsBus, connect, rpcs, subjects
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.testing import Stack, poll_until

pytestmark = pytest.mark.integration


async def _bus(stack: Stack) -> NatsBus:
    assert stack.nats is not None
    return await connect(stack.nats.url, "test-faults")


async def _collect(bus: NatsBus, durable: str) -> list[pb.RoomEvent]:
    seen: list[pb.RoomEvent] = []

    async def on_event(d: Delivery) -> None:
        seen.append(pb.RoomEvent.FromString(d.data))
        await d.ack()

    bus.consume(subjects.EVENTS_STREAM, durable, on_event, filter_subject=subjects.ROOM_EVENTS_ALL)
    return seen


async def _list(bus: NatsBus, names: list[str] | None = None) -> list[models.Room]:
    resp = await bus.call(rpcs.LIST_ROOMS, lk.ListRoomsRequest(names=names or []), timeout=5)
    return list(resp.rooms)


async def test_kill_and_restart_loses_nothing_and_keeps_deadlines(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(services=["room-state"], config={"room": {"empty_timeout": 4, "departure_timeout": 1}})
    bus = await _bus(stack)
    try:
        events = await _collect(bus, "faults")
        short = await bus.call(rpcs.CREATE_ROOM, lk.CreateRoomRequest(name="short"), timeout=10)
        keep = [
            await bus.call(
                rpcs.CREATE_ROOM, lk.CreateRoomRequest(name=f"keep-{i}", empty_timeout=600), timeout=10
            )
            for i in range(5)
        ]
        stack.kill("room-state")
        stack.restart("room-state")

        rooms = {r.name: r.sid for r in await _list(bus)}
        for room in keep:
            assert rooms.get(room.name) == room.sid, "a room was lost across the restart"

        finished = await poll_until(
            lambda: next((e for e in events if e.event == "room_finished" and e.room.name == "short"), None),
            timeout=20,
            message="the empty room closes after the restart",
        )
        assert finished is not None
        assert finished.created_at_ms - short.creation_time_ms >= 4000, "closed before empty_timeout"
        assert finished.created_at_ms - short.creation_time_ms < 4000 + 8000, "closed far too late"
        assert [r.name for r in await _list(bus, ["short"])] == []
        # Every event reached the stream exactly once, in order, across the crash.
        started = [e.room.name for e in events if e.event == "room_started"]
        await poll_until(lambda: len([e for e in events if e.event == "room_started"]) == 6, timeout=10)
        assert sorted(started) == sorted(["short"] + [r.name for r in keep])
        assert len({e.id for e in events}) == len(events)
    finally:
        await bus.aclose()


async def test_two_instances_keep_one_consistent_room(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(services=["room-state"], instances={"room-state": 2})
    bus = await _bus(stack)
    try:
        events = await _collect(bus, "two-instances")
        now = int(time.time())
        await bus.publish(subjects.SFU_NODES, node_pb2.NodeStats(node_id="SFU_x", load=0.2, updated_at=now))

        async def create() -> models.Room:
            return await bus.call(rpcs.CREATE_ROOM, lk.CreateRoomRequest(name="shared"), timeout=10)

        created = await asyncio.gather(*[create() for _ in range(10)])
        assert len({r.sid for r in created}) == 1, "concurrent CreateRoom made several rooms"

        async def join(i: int) -> pb.JoinRoomResponse:
            req = pb.JoinRoomRequest(room_name="shared", participant=models.ParticipantInfo(identity=f"p{i}"))
            return await bus.call(rpcs.JOIN_ROOM, req, timeout=15)

        async def joined_all() -> list[pb.JoinRoomResponse] | None:
            try:
                return list(await asyncio.gather(*[join(i) for i in range(20)]))
            except Exception:
                await bus.publish(subjects.SFU_NODES, node_pb2.NodeStats(node_id="SFU_x", updated_at=now))
                return None

        joins = await poll_until(joined_all, timeout=20, message="20 concurrent joins")
        assert joins is not None
        assert all(j.node_id == "SFU_x" for j in joins)
        people = await bus.call(rpcs.LIST_PARTICIPANTS, lk.ListParticipantsRequest(room="shared"), timeout=5)
        # Each identity is in exactly once, with the sid its last join was given.
        by_identity = {p.identity: p.sid for p in people.participants}
        assert len(people.participants) == 20 and len(by_identity) == 20

        # room_started, then one participant_connected per identity: 21 events, sequence 1..21.
        await poll_until(lambda: sum(1 for e in events if e.room.name == "shared") >= 21, timeout=15)
        ours = [e for e in events if e.room.name == "shared"]
        assert [e.room_sequence for e in ours] == list(range(1, 22)), (
            "room_sequence gaps, repeats or disorder"
        )
        assert ours[0].event == "room_started"
        assert {e.participant.sid for e in ours[1:]} == set(by_identity.values())
    finally:
        await bus.aclose()
