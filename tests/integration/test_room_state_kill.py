"""One of two room-state instances SIGKILLed under official-SDK load goes unnoticed.

``livekit-api`` RoomService calls (CreateRoom, ListRooms, ListParticipants) and Python ``livekit`` SDK
participants joining and leaving run in loops against one edge while room-state-1 is killed: no
call and no join fails, the survivor serves everything, and a participant that joined before the
kill is still listed with the same sid.

A kill at a random moment often finds no request in flight on the instance, and then proves nothing.
So the instance is first frozen (SIGSTOP: its NATS connection stays up and it keeps being handed
requests) until the edge's log shows it asked room-state again (``Rpc.idempotent``), and killed then:
requests are known to be lost with it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from livekit import api

from parley.testing import Stack, load_script, poll_until

pytestmark = pytest.mark.integration

load = load_script(Path(__file__).with_name("sdk_load.py"), "sdk_load")

SERVICES = ["room-state", "sfu", "signaling"]
API_LOOPS = 8
JOIN_LOOPS = 3
"""Enough load that requests are in flight on the killed instance at the kill (with two API loops a
kill rarely hit one; with twelve, 3-9 RoomService calls per kill were lost before the edge asked
again: ``Rpc.idempotent``)."""
AFTER_KILL_CALLS = 3
"""Calls each loop must have started after the kill before the loops stop (three: every kind of
call is made after the kill). Each loop is sequential, so its calls in flight at the kill have ended
by then (answered, asked again, or refused
after the edge's 5 s JoinRoom timeout: a request lost with the killed instance shows as a failure)."""
REASKED = "no answer; asking again"
"""The edge's bus log line when it asks an unanswered idempotent request again (``calling.py``)."""


def reasked(edge_log: str) -> list[str]:
    return [line for line in edge_log.splitlines() if REASKED in line and "parley.roomstate." in line]


async def test_killing_one_of_two_room_state_instances_fails_no_call(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(services=SERVICES, instances={"room-state": 2})
    key, secret = stack.api_key, stack.api_secret
    room = f"kill-{uuid.uuid4().hex[:6]}"
    stayer = await load.join(stack.ws_url, key, secret, room, "stayer")
    sid = stayer.local_participant.sid
    apis = [load.ApiLoad(stack.http_url, key, secret, room, f"{room}-api{i}") for i in range(API_LOOPS)]
    joins = [load.JoinLoop(stack.ws_url, key, secret, room, f"j{i}", stay=0.3) for i in range(JOIN_LOOPS)]
    loops = [*apis, *joins]
    tasks = [asyncio.create_task(loop.run()) for loop in loops]
    try:
        await poll_until(
            lambda: all(len([c for c in loop.record.calls if c.ok]) >= 2 for loop in loops),
            timeout=60,
            message="every loop runs",
        )
        before = len(reasked(stack.log("signaling")))
        frozen = stack.get("room-state", 1).process.proc
        assert frozen is not None
        os.kill(frozen.pid, signal.SIGSTOP)
        try:
            await poll_until(
                lambda: len(reasked(stack.log("signaling"))) > before,
                timeout=30,
                message="the edge asks again a request the frozen instance holds",
            )
        finally:
            stack.kill("room-state", 1)  # SIGKILL works on a stopped process
        killed = time.monotonic()

        def past_the_kill() -> bool:
            started_after = (len([c for c in loop.record.calls if c.started >= killed]) for loop in loops)
            return all(n >= AFTER_KILL_CALLS for n in started_after)

        # the load runs on and the loops record every call
        await poll_until(past_the_kill, timeout=60, message="every loop carries on after the kill")
        for loop in loops:
            loop.stop()
        await asyncio.gather(*tasks)

        failed = [c for loop in loops for c in loop.record.failed()]
        assert failed == [], f"calls failed around the kill: {failed}"
        after = [c for loop in loops for c in loop.record.calls if c.started >= killed]
        assert {c.kind for c in after} >= {"CreateRoom", "ListRooms", "ListParticipants", "join", "leave"}
        slowest = max(
            (c for loop in loops for c in loop.record.spanning(killed)), key=lambda c: c.ended - c.started
        )
        print(
            f"\nroom-state kill: {len(after)} calls after the kill, none failed, "
            f"{len(reasked(stack.log('signaling'))) - before} asked again; slowest call across it "
            f"{slowest.kind} {slowest.ended - slowest.started:.2f}s"
        )

        client = api.LiveKitAPI(stack.http_url, key, secret)
        try:
            rooms = {r.name for r in (await client.room.list_rooms(api.ListRoomsRequest())).rooms}
            created = {name for a in apis for name in a.created}
            assert created <= rooms, f"rooms lost: {created - rooms}"

            async def only_stayer() -> bool:
                resp = await client.room.list_participants(api.ListParticipantsRequest(room=room))
                return [(p.identity, p.sid) for p in resp.participants] == [("stayer", sid)]

            await poll_until(only_stayer, timeout=20, message="the stayer alone is listed, same sid")
        finally:
            await client.aclose()
    finally:
        for loop in loops:
            loop.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await load.leave(stayer)
