"""The egress store through a proxy that loses the EXEC reply (the server applied it, the client never
heard back, as at a failover): the change is applied once. Without the commit markers a lost worker
would be counted twice (part 2, retry_count 2) and its event written twice."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from livekit.protocol import egress as lk

from parley.config import RedisConfig
from parley.devprocs import ValkeyServer
from parley.egress import infos
from parley.egress.config import CpuCosts
from parley.egress.record import EgressRecord
from parley.egress.store import RedisStore
from parley.protocol.gen.egress.v1 import egress_pb2 as eg
from parley.runtime import redis_client
from parley.testing import LostReplyProxy

pytestmark = pytest.mark.integration

EXEC = b"$4\r\nEXEC\r\n"
NOW_NS = 1_700_000_000_000_000_000


@pytest_asyncio.fixture
async def proxy(valkey_server: ValkeyServer) -> AsyncIterator[LostReplyProxy]:
    p = await LostReplyProxy(valkey_server.port).start()
    yield p
    await p.aclose()


@pytest_asyncio.fixture
async def client(proxy: LostReplyProxy) -> AsyncIterator[aioredis.Redis]:
    c = redis_client(RedisConfig(address=proxy.address, failover_wait=5))
    yield c
    await c.aclose()


async def test_a_lost_worker_whose_exec_reply_is_lost_counts_one_part(
    client: aioredis.Redis, proxy: LostReplyProxy
) -> None:
    store = RedisStore(client, "lost")
    request = eg.EgressRequest(track=lk.TrackEgressRequest(room_name="r", track_id="TR_a"))
    record = infos.new_record("EG_a", "RM_x", request, CpuCosts(), NOW_NS)
    infos.placed(record, "W1", None, NOW_NS)
    await store.mutate("EG_a", lambda _: (record, None))
    runs: list[int] = []

    def lose(r: EgressRecord | None) -> tuple[EgressRecord | None, int]:
        assert r is not None
        runs.append(r.part)
        infos.worker_lost(r, NOW_NS + 1)
        return r, r.part

    proxy.lose_reply_to(EXEC)
    part = await store.mutate("EG_a", lose)

    assert proxy.lost == 1, "the proxy dropped the EXEC reply"
    assert (part, runs) == (1, [0])
    stored = await store.get("EG_a")
    assert stored is not None and (stored.part, stored.info.retry_count) == (1, 1)
    events = [e.event for e in await store.outbox_peek(100)]
    assert events == ["egress_started", "egress_updated"]
