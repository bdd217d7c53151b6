"""Declarations: subjects from topics, topics back from subjects, and registration lists that must
match what a service binds."""

from __future__ import annotations

import pytest
from livekit.protocol import models
from livekit.protocol import room as lk

from parley.bus import MemoryBus, bind, rpcs, serve_all

pytestmark = pytest.mark.unit


def test_subjects_and_topics() -> None:
    assert rpcs.JOIN_ROOM.subject() == "parley.roomstate.JoinRoom"
    assert rpcs.SESSION_START.subject("NODE_a") == "parley.sfu.NODE_a.session.start"
    assert rpcs.PING.subject("room-state") == "parley.ping.room-state"
    assert rpcs.PING.queue_group("room-state") == "room-state"
    assert rpcs.WORKER_FRAME.topic_of("parley.dispatch.instance.DI_1.frame") == "DI_1"
    for bad in ("parley.dispatch.instance.DI_1.offer", "parley.dispatch.instance.a.b.frame", "x"):
        with pytest.raises(ValueError):
            rpcs.WORKER_FRAME.topic_of(bad)
    with pytest.raises(ValueError):
        rpcs.JOIN_ROOM.topic_of("parley.roomstate.JoinRoom")  # no topic to read
    with pytest.raises(ValueError):
        rpcs.SESSION_START.subject()
    for bad_topic in ("*", ">", "NODE_a.x", "NODE a"):
        with pytest.raises(ValueError, match="separator or wildcard"):
            rpcs.SESSION_START.subject(bad_topic)  # "*" would reach every node's sessions


async def test_serve_all_refuses_bindings_that_differ_from_the_declared_list() -> None:
    bus = MemoryBus()

    async def create(req: lk.CreateRoomRequest) -> models.Room:
        return models.Room(name=req.name)

    try:
        with pytest.raises(ValueError):
            await serve_all(
                bus, (rpcs.CREATE_ROOM, rpcs.UPDATE_ROOM_METADATA), [bind(rpcs.CREATE_ROOM, create)]
            )
        with pytest.raises(ValueError):
            await serve_all(
                bus, (rpcs.CREATE_ROOM,), [bind(rpcs.CREATE_ROOM, create), bind(rpcs.CREATE_ROOM, create)]
            )
    finally:
        await bus.aclose()
