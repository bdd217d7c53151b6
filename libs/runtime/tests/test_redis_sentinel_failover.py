"""``redis_client`` on a real Valkey Sentinel set across a SIGKILLed primary: commands follow the
promoted replica, a WATCH/MULTI/EXEC transaction cut mid-way raises WatchError (re-run whole by the
caller, as ``Store.mutate`` does, never half-applied), and a Lua script registered before the
failover runs on the new primary (EVALSHA falls back to SCRIPT LOAD on NOSCRIPT)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from parley.config import RedisConfig
from parley.devprocs import ValkeySentinelSet
from parley.runtime import redis_client

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def sentinel_set(tmp_path: Path) -> AsyncIterator[ValkeySentinelSet]:
    servers = ValkeySentinelSet(data_dir=tmp_path / "data", log_dir=tmp_path)
    await asyncio.to_thread(servers.start)
    yield servers
    await asyncio.to_thread(servers.close)


async def _bump(client: aioredis.Redis) -> None:
    """a and b go up together, optimistically (WATCH, read, MULTI/EXEC)."""
    async with client.pipeline(transaction=True) as pipe:
        await pipe.watch("a", "b")
        value = int(await pipe.get("a") or 0)
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.set("a", value + 1)
        pipe.set("b", value + 1)
        await pipe.execute()


async def test_transactions_and_scripts_follow_the_promoted_replica(sentinel_set: ValkeySentinelSet) -> None:
    client = redis_client(RedisConfig(**sentinel_set.redis_section()))  # type: ignore[arg-type]
    try:
        incr = client.register_script("return redis.call('INCR', KEYS[1])")
        assert await incr(keys=["n"]) == 1
        await _bump(client)
        await client.execute_command("WAIT", 1, 5000)  # type: ignore[no-untyped-call]  # replica in sync
        old = sentinel_set.primary_address()

        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch("a", "b")
            value = int(await pipe.get("a") or 0)
            assert await asyncio.to_thread(sentinel_set.kill_primary) == old
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set("a", value + 1)
            pipe.set("b", value + 1)
            with pytest.raises(WatchError):  # not retried on the new primary behind the caller's back
                await pipe.execute()

        await _bump(client)  # the caller's re-run: waits for the failover, applies once
        assert await client.mget("a", "b") == [b"2", b"2"]
        # the promoted replica never saw SCRIPT LOAD (scripts are not replicated): the call below
        # gets NOSCRIPT and loads the script again
        assert await client.script_exists(incr.sha) == [False]
        assert await incr(keys=["n"]) == 2
        assert sentinel_set.primary_address() not in (None, old)
    finally:
        await client.aclose()
