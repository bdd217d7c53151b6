"""The EgressStore contract, on a real Valkey (``RedisStore``) and on ``MemoryStore`` (the unit tests'
fake must keep the same rules): records and their indexes, events in the outbox with the change,
lease renewal by the holder only, claims, retention, and concurrent writers (WATCH/MULTI re-runs)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from livekit.protocol import egress as lk

from parley.egress import infos
from parley.egress.config import CpuCosts
from parley.egress.fakes import MemoryStore
from parley.egress.interfaces import EgressStore
from parley.egress.record import EgressRecord
from parley.egress.store import RedisStore
from parley.protocol.gen.egress.v1 import egress_pb2 as eg

pytestmark = pytest.mark.integration

NOW_NS = 1_700_000_000_000_000_000


@pytest_asyncio.fixture(params=["redis", "memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EgressStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    server = request.getfixturevalue("valkey_server")  # the async redis_client can't be asked for here
    client = aioredis.Redis.from_url(f"redis://{server.address}/0")
    yield RedisStore(client, "unit")
    await client.aclose()


def new(egress_id: str, room: str = "r1", worker: str = "W1", due_ms: int = 1000) -> EgressRecord:
    request = eg.EgressRequest(track=lk.TrackEgressRequest(room_name=room, track_id="TR_a"))
    record = infos.new_record(egress_id, "RM_x", request, CpuCosts(), NOW_NS)
    infos.placed(record, worker, None, NOW_NS)
    record.due_ms = due_ms
    return record


async def create(store: EgressStore, record: EgressRecord) -> None:
    await store.mutate(record.egress_id, lambda _: (record, None))


async def test_a_record_round_trips_with_its_indexes_and_event(store: EgressStore) -> None:
    await create(store, new("EG_a"))
    await create(store, new("EG_b", room="r2"))
    got = await store.get("EG_a")
    assert got is not None and (got.worker_id, got.part, got.cost) == ("W1", 0, 0.5)
    assert got.request.track.track_id == "TR_a" and got.info.status == lk.EgressStatus.EGRESS_STARTING
    assert [i.egress_id for i in await store.list_infos()] == ["EG_a", "EG_b"]
    assert [i.egress_id for i in await store.list_infos("r2")] == ["EG_b"]
    assert await store.get("EG_nope") is None
    assert await store.acquire_relay("me", 5000)
    assert not await store.acquire_relay("other", 5000)
    events = await store.outbox_peek(10)
    assert [(e.event, e.egress_info.egress_id) for e in events] == [
        ("egress_started", "EG_a"),
        ("egress_started", "EG_b"),
    ]
    assert events[0].room.name == "r1" and events[0].room.sid == "RM_x"
    assert not await store.outbox_trim(2, "other", 5000)
    assert await store.outbox_trim(2, "me", 5000)
    assert await store.outbox_peek(10) == []
    await store.release_relay("me")
    assert await store.acquire_relay("other", 5000)


async def test_leases_claims_and_retention(store: EgressStore) -> None:
    await create(store, new("EG_a", due_ms=1000))
    await create(store, new("EG_b", worker="W2", due_ms=1000))
    await store.renew("W1", ["EG_a", "EG_b"], 5000)  # W1 holds only EG_a
    assert await store.claim_due(2000, 10_000) == ["EG_b"]
    assert await store.claim_due(2000, 10_000) == []  # claimed: hidden for the claim's lease
    assert sorted(await store.claim_due(6000, 10_000)) == ["EG_a"]
    assert (await store.get("EG_a")).due_ms == 5000  # type: ignore[union-attr]

    def complete(record: EgressRecord | None) -> tuple[EgressRecord | None, None]:
        assert record is not None
        infos.apply_report(
            record, eg.EgressReport(worker_id="W1", status=lk.EgressStatus.EGRESS_COMPLETE), NOW_NS
        )
        return record, None

    await store.mutate("EG_a", complete)
    assert await store.claim_due(10**15, 1000) == ["EG_b"]  # an ended egress is never claimed
    assert await store.forget_ended(NOW_NS // 1_000_000 - 1) == 0
    assert await store.forget_ended(NOW_NS // 1_000_000) == 1
    assert await store.get("EG_a") is None
    assert [i.egress_id for i in await store.list_infos()] == ["EG_b"]
    assert [i.egress_id for i in await store.list_infos("r1")] == ["EG_b"]


async def test_concurrent_writers_each_apply_once(store: EgressStore) -> None:
    await create(store, new("EG_a"))

    async def bump(n: int) -> None:
        def fn(record: EgressRecord | None) -> tuple[EgressRecord | None, None]:
            assert record is not None
            record.reports[f"W{n}"] = n
            return record, None

        await store.mutate("EG_a", fn)

    await asyncio.gather(*(bump(n) for n in range(1, 11)))
    got = await store.get("EG_a")
    assert got is not None and got.reports == {f"W{n}": n for n in range(1, 11)}
