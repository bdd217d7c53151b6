"""Dispatch's writes survive a lost reply: the Redis client re-sends a command whose reply a dropped
connection or a failover lost (``redis.failover_wait``), and the repeat must not count a job twice
on its worker nor forget the jobs of a removed worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from livekit.protocol import agent, models

from parley.config import RedisConfig
from parley.devprocs.processes import ValkeyServer
from parley.dispatch.ids import WorkerID
from parley.dispatch.records import WorkerRecord
from parley.dispatch.store import Store
from parley.runtime import redis_client
from parley.testing import LostReplyProxy

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def proxy(valkey_server: ValkeyServer) -> AsyncIterator[LostReplyProxy]:
    p = await LostReplyProxy(valkey_server.port).start()
    yield p
    await p.aclose()


@pytest_asyncio.fixture
async def store(proxy: LostReplyProxy) -> AsyncIterator[Store]:
    client = redis_client(RedisConfig(address=proxy.address, failover_wait=5))
    s = Store(client, "lost")
    await s.put_worker(
        WorkerRecord(
            worker_id=WorkerID("AW_1"),
            agent_name="",
            namespace="",
            job_type=agent.JobType.JT_ROOM,
            deployment="",
            version="1",
            permission=models.ParticipantPermission(),
            api_key="k",
            owner="DIS_1",
            reply_subject="edge",
            connection_id="c1",
        )
    )
    yield s
    await client.aclose()


def job(jid: str) -> agent.Job:
    return agent.Job(id=jid, type=agent.JobType.JT_ROOM, room=models.Room(name="r"))


async def test_an_assignment_whose_reply_is_lost_is_counted_once(store: Store, proxy: LostReplyProxy) -> None:
    await store.assign(job("AJ_0"), "AW_1")  # warm-up: a cached script, a pooled connection
    proxy.lose_reply_to(b"AJ_1")
    await store.assign(job("AJ_1"), "AW_1")

    assert proxy.lost == 1, "the proxy dropped the assignment's reply"
    rec = await store.get_worker("AW_1")
    assert rec is not None and rec.assigned == 2, "the re-sent assignment counted the job twice"
    assert await store.get_job("AJ_1") is not None


async def test_a_removal_whose_reply_is_lost_still_returns_the_jobs(
    store: Store, proxy: LostReplyProxy
) -> None:
    await store.assign(job("AJ_0"), "AW_1")
    await store.assign(job("AJ_1"), "AW_1")
    await store.remove_worker("AW_0")  # warm-up: the script cached, so the lost reply is the removal's
    proxy.lose_reply_to(b"AW_1:jobs")
    jobs = await store.remove_worker("AW_1")

    assert proxy.lost == 1, "the proxy dropped the removal's reply"
    assert sorted(jobs) == ["AJ_0", "AJ_1"], "the re-sent removal forgot the worker's jobs"
    assert await store.get_worker("AW_1") is None
    assert await store.worker_ids() == []


async def test_a_first_mark_whose_reply_is_lost_still_says_first(store: Store, proxy: LostReplyProxy) -> None:
    """room_started/participant_joined/track_published launch agents only on the first mark: a
    repeated mark answering "seen" would launch none."""
    assert await store.first("r", "joined", "PA_0")  # warm-up: the script cached
    proxy.lose_reply_to(b"PA_1")
    assert await store.first("r", "joined", "PA_1"), "the re-sent mark answered 'seen'"
    assert proxy.lost == 1
    assert not await store.first("r", "joined", "PA_1"), "a later delivery of the event is seen"
