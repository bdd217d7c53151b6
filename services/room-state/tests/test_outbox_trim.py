"""The outbox trim is idempotent: the Redis client repeats a command whose reply a failover lost
(``redis.failover_wait``), and a repeated trim must not drop events the relay has not published."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.room_state.store import Store

pytestmark = pytest.mark.integration


async def test_a_repeated_trim_drops_nothing_more(redis_client: aioredis.Redis) -> None:
    store = Store(redis_client, "trim")
    events = [pb.RoomEvent(id=f"EV_{i}", event="room_started").SerializeToString() for i in range(5)]
    await redis_client.rpush(store.outbox_key, *events)
    assert await store.acquire_relay("me", 10_000)

    peeked = await store.outbox_peek(3)
    assert [e.id for e in peeked] == ["EV_0", "EV_1", "EV_2"]
    assert await store.outbox_trim(3, "me", 10_000)
    assert await store.outbox_trim(3, "me", 10_000), "the repeat answers like the first call"
    left = [e.id for e in await store.outbox_peek(10)]
    assert left == ["EV_3", "EV_4"], "a repeated trim dropped unpublished events"
    assert not await store.outbox_trim(2, "someone-else", 10_000), "only the lock holder trims"
    assert await store.outbox_len() == 2
