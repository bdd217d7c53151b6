"""Redis Sentinel failover under official-SDK load: the Valkey primary is SIGKILLed while
``livekit-api`` RoomService calls run in a loop and ``livekit`` SDK participants join.

The stack runs on a Valkey primary + replica + 3 sentinels (``Stack(redis_sentinel=True)``,
down-after 1 s). What must hold once the sentinels promote the replica:

- no committed room is lost. Replication is asynchronous, so "committed" means on the replica:
  the test writes a barrier key on the primary and waits for the replica with ``WAIT 1`` before the
  kill; every room whose CreateRoom answered before the barrier, and every room whose CreateRoom
  started after the old primary died (so written on the new one), is listed after. Rooms answered between the
  barrier and the kill are best-effort (Sentinel's window: a write the dying primary acknowledged
  may not have reached the replica); the test prints how many of them were lost;
- every call made during the failover succeeds, late rather than failed: RoomService calls (the
  edge waits up to 10 s for room-state) and SDK joins (JoinRoom: 5 s);
- a participant that joined before the kill is still listed, and the joins made during the
  failover are listed too;
- dispatch follows the new primary: an agent dispatch stored before the kill is listed, a new one
  is stored.

It prints the failover times (kill -> first CreateRoom answered by the new primary; kill -> first SDK
join connected), recorded in bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from livekit import api, rtc

from parley.devprocs import ValkeySentinelSet
from parley.testing import Stack, load_script, poll_until

pytestmark = pytest.mark.integration

load = load_script(Path(__file__).with_name("sdk_load.py"), "sdk_load")

SERVICES = ["room-state", "sfu", "dispatch", "signaling"]
ROOMS_BEFORE = 20
LATE_JOINS = 3


async def _listed(stack: Stack, room: str) -> set[str]:
    client = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    try:
        resp = await client.room.list_participants(api.ListParticipantsRequest(room=room))
        return {p.identity for p in resp.participants}
    finally:
        await client.aclose()


async def _rooms(stack: Stack) -> set[str]:
    client = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    try:
        return {r.name for r in (await client.room.list_rooms(api.ListRoomsRequest())).rooms}
    finally:
        await client.aclose()


async def test_primary_sigkill_under_load_delays_calls_and_loses_no_room(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(services=SERVICES, redis_sentinel=True)
    sentinel = stack.sentinel
    assert sentinel is not None
    run = uuid.uuid4().hex[:6]
    main = f"fo-{run}"
    key, secret = stack.api_key, stack.api_secret

    client = api.LiveKitAPI(stack.http_url, key, secret)
    try:
        before = [f"before-{run}-{i}" for i in range(ROOMS_BEFORE)]
        for name in before:
            await client.room.create_room(api.CreateRoomRequest(name=name, empty_timeout=600))
        await client.room.create_room(api.CreateRoomRequest(name=main, empty_timeout=600))
        await client.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name="agent-before", room=main)
        )
    finally:
        await client.aclose()
    early = await load.join(stack.ws_url, key, secret, main, "early")
    late: list[rtc.Room] = []
    apis = [load.ApiLoad(stack.http_url, key, secret, main, f"during-{run}-{i}") for i in range(2)]
    tasks = [asyncio.create_task(a.run()) for a in apis]
    promotion: asyncio.Task[float] | None = None
    try:
        await poll_until(lambda: len(apis[0].created) >= 3, timeout=30, message="the API loop runs")
        old = sentinel.primary_address()
        assert old is not None
        barrier = await _replicated_barrier(old)
        killed = time.monotonic()
        assert sentinel.kill_primary() == old
        dead = time.monotonic()  # no write can land on the old primary after this
        promotion = asyncio.create_task(_promoted(sentinel, old))

        joins = load.Record()

        async def late_join(i: int) -> None:
            await joins.timed("join", f"late-{i}", _join_into(late, stack, main, f"late-{i}"))

        await asyncio.gather(*(late_join(i) for i in range(LATE_JOINS)))
        promoted = await asyncio.wait_for(promotion, 30)
        await poll_until(
            lambda: all(a.record.first_ok_after(promoted, ("CreateRoom",)) for a in apis),
            timeout=30,
            message="the API loops write on the new primary",
        )
        writes = [a.record.first_ok_after(killed, ("CreateRoom",)) for a in apis]
        for a in apis:
            a.stop()
        await asyncio.gather(*tasks)

        failed = [c for a in apis for c in a.record.failed()] + joins.failed()
        assert failed == [], f"calls failed during the failover: {failed}"
        during = [c for a in apis for c in a.record.spanning(killed)]
        assert len(during) > 2 * len(apis), "the loops made calls across the failover"

        rooms = await _rooms(stack)
        assert set(before) <= rooms, f"rooms lost: {set(before) - rooms}"
        answered = [c for a in apis for c in a.record.calls if c.kind == "CreateRoom" and c.ok]
        committed = {c.detail for c in answered if c.ended <= barrier or c.started >= dead}
        assert committed <= rooms, f"replicated or new-primary rooms lost: {committed - rooms}"
        window = {c.detail for c in answered} - committed
        expected = {"early", *(f"late-{i}" for i in range(LATE_JOINS))}
        await poll_until(
            lambda: _listed_is(stack, main, expected), timeout=20, message="every participant listed"
        )
        # dispatch follows the new primary too: an agent dispatch written before the kill is read
        # back and a new one is stored
        client = api.LiveKitAPI(stack.http_url, key, secret)
        try:
            names = {d.agent_name for d in await client.agent_dispatch.list_dispatch(room_name=main)}
            assert "agent-before" in names, names
            await client.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="agent-after", room=main)
            )
            names = {d.agent_name for d in await client.agent_dispatch.list_dispatch(room_name=main)}
            assert {"agent-before", "agent-after"} <= names, names
        finally:
            await client.aclose()

        first_write = min(c.ended for c in (w for w in writes if w is not None)) - killed
        first_join = min(c.ended for c in joins.calls) - killed
        slowest_api = max(c.ended - c.started for c in during)
        print(
            f"\nredis failover: kill -> a sentinel names the new primary {promoted - killed:.2f}s; "
            f"kill -> first CreateRoom answered {first_write:.2f}s; kill -> first SDK join {first_join:.2f}s; "
            f"slowest API call across the failover {slowest_api:.2f}s; "
            f"{len(during)} API calls and {len(joins.calls)} joins across it, none failed; "
            f"{len(window - rooms)} of {len(window)} rooms answered between the replication barrier and "
            "the kill lost (asynchronous replication, best-effort)"
        )
    finally:
        for a in apis:
            a.stop()
        if promotion is not None:
            promotion.cancel()
        await asyncio.gather(*tasks, *([promotion] if promotion else []), return_exceptions=True)
        for participant in [early, *late]:
            await load.leave(participant)


async def _replicated_barrier(primary: str) -> float:
    """Write a key on ``primary`` and wait until the replica has it (``WAIT 1``): every write the
    primary applied before it is on the replica too (one replication stream, in order). Returns when
    (monotonic) the barrier was written: writes answered before that are committed."""
    host, _, port = primary.rpartition(":")
    direct = aioredis.Redis(host=host, port=int(port))
    try:
        written = time.monotonic()
        await direct.set("test:replication-barrier", str(written))
        replicas = await direct.wait(1, 5000)
        assert int(replicas) >= 1, "the replica did not acknowledge the barrier within 5 s"
        return written
    finally:
        await direct.aclose()


async def _promoted(sentinel: ValkeySentinelSet, old: str | None) -> float:
    """When a sentinel first names a primary other than ``old`` (monotonic)."""
    return await asyncio.to_thread(_wait_promoted, sentinel, old)


def _wait_promoted(sentinel: ValkeySentinelSet, old: str | None, limit: float = 60.0) -> float:
    deadline = time.monotonic() + limit
    while sentinel.primary_address() in (None, old):
        if time.monotonic() > deadline:
            raise AssertionError(f"no sentinel named a new primary within {limit}s")
        time.sleep(0.05)
    return time.monotonic()


async def _join_into(into: list[rtc.Room], stack: Stack, room: str, identity: str) -> None:
    into.append(await load.join(stack.ws_url, stack.api_key, stack.api_secret, room, identity))


async def _listed_is(stack: Stack, room: str, identities: set[str]) -> bool:
    try:
        return await _listed(stack, room) == identities
    except Exception:
        return False
