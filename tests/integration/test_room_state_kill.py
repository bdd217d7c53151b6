"""room-state SIGKILLed under official-SDK load: one of two instances goes unnoticed, and the only
instance restarted delays calls without failing any.

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


OUTAGE_S = 1.0
"""How long the only room-state instance stays dead before a new process starts (``parley dev``
waits 0.5 s before its first restart); the new process then takes ~3 s to answer."""


async def test_killing_the_only_room_state_instance_delays_calls_and_fails_none(
    make_stack: Callable[..., Stack],
) -> None:
    """With one instance, calls and joins made while it is dead wait (the edge retries a shared
    subject with no responder for ``signaling.responder_wait``, 10 s) and succeed once it is back;
    those in flight at the kill are asked again (``Rpc.idempotent``)."""
    stack = make_stack(services=SERVICES)
    key, secret = stack.api_key, stack.api_secret
    room = f"kill1-{uuid.uuid4().hex[:6]}"
    stayer = await load.join(stack.ws_url, key, secret, room, "stayer")
    sid = stayer.local_participant.sid
    apis = [load.ApiLoad(stack.http_url, key, secret, room, f"{room}-api{i}") for i in range(4)]
    joins = [load.JoinLoop(stack.ws_url, key, secret, room, f"j{i}", stay=0.3) for i in range(2)]
    loops = [*apis, *joins]
    tasks = [asyncio.create_task(loop.run()) for loop in loops]
    try:
        await poll_until(
            lambda: all(len([c for c in loop.record.calls if c.ok]) >= 2 for loop in loops),
            timeout=60,
            message="every loop runs",
        )
        stack.kill("room-state")
        killed = time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        restarting = time.monotonic()  # no room-state process exists before this moment
        await asyncio.to_thread(stack.restart, "room-state")
        back = time.monotonic()

        def past_the_restart() -> bool:
            return all(len([c for c in loop.record.calls if c.started >= back]) >= 2 for loop in loops)

        await poll_until(past_the_restart, timeout=60, message="every loop carries on after the restart")
        for loop in loops:
            loop.stop()
        await asyncio.gather(*tasks)

        failed = [c for loop in loops for c in loop.record.failed()]
        assert failed == [], f"calls failed around the outage: {failed}"
        waited = [c for loop in loops for c in loop.record.spanning(killed) if c.started < restarting]
        assert {c.kind for c in waited} >= {"join"}, f"no join was made during the outage: {waited}"
        # (a call in flight at the kill may have had its answer already: only later ones must wait)
        early = [c for c in waited if killed <= c.started and c.ended < restarting and c.kind != "leave"]
        assert early == [], f"answered while no room-state process existed: {early}"
        slowest = max(waited, key=lambda c: c.ended - c.started)
        print(
            f"\nsingle room-state kill: {len(waited)} calls made or in flight while it was dead "
            f"(restart answered {back - killed:.2f}s after the kill), none failed; slowest {slowest.kind} {slowest.ended - slowest.started:.2f}s"
        )

        client = api.LiveKitAPI(stack.http_url, key, secret)
        try:
            created = {name for a in apis for name in a.created}
            rooms = {r.name for r in (await client.room.list_rooms(api.ListRoomsRequest())).rooms}
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
