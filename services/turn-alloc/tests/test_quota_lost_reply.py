"""The TURN quota survives a lost reply: the Redis client re-sends a take whose reply a dropped
connection or a failover lost, and the repeat must answer like the first call (counted once, not
refused because of its own first run)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from parley.config import RedisConfig
from parley.devprocs.processes import ValkeyServer
from parley.runtime import redis_client
from parley.testing import LostReplyProxy
from parley.turn_alloc.quota import RedisQuota

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def proxy(valkey_server: ValkeyServer) -> AsyncIterator[LostReplyProxy]:
    p = await LostReplyProxy(valkey_server.port).start()
    yield p
    await p.aclose()


async def test_the_last_allowed_credential_is_issued_when_its_reply_is_lost(proxy: LostReplyProxy) -> None:
    quota = RedisQuota(redis_client(RedisConfig(address=proxy.address, failover_wait=5)), "lost")
    try:
        expires = time.time() + 600
        assert await quota.take("alice", expires_at=expires, limit=2)  # warm-up: the script cached
        proxy.lose_reply_to(b"turn:quota:alice")
        assert await quota.take("alice", expires_at=expires, limit=2), "the repeat refused its own credential"
        assert proxy.lost == 1
        assert not await quota.take("alice", expires_at=expires, limit=2), (
            "two are live: the third is refused"
        )
    finally:
        await quota.aclose()
