"""A change whose EXEC reply is lost is applied once: the server ran the transaction, the connection
dropped before the reply came back (redis-py then raises WatchError on the watching pipeline), and
``Store.mutate`` must answer with the result it computed instead of running the change again on
state that already holds it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

import pytest
import pytest_asyncio
import redis
import redis.asyncio as aioredis
from livekit.protocol import models

from parley.bus.subjects import room_token
from parley.config import RedisConfig
from parley.config.sections import RoomConfig
from parley.devprocs.processes import ValkeyServer
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.room_state import rooms
from parley.room_state.record import RoomRecord
from parley.room_state.store import Mutation, Store
from parley.runtime import redis_client
from parley.testing import LostReplyProxy

pytestmark = pytest.mark.integration

EXEC = b"$4\r\nEXEC\r\n"
T = TypeVar("T")


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


def counted(inner: Mutation[T], runs: list[list[str] | None]) -> Mutation[T]:
    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, T]:
        runs.append(None if rec is None else sorted(rec.participants))
        return inner(rec)

    return fn


def join(identity: str) -> Mutation[pb.JoinRoomResponse]:
    req = pb.JoinRoomRequest(room_name="r", participant=models.ParticipantInfo(identity=identity))
    return rooms.join(req, RoomConfig(), True, {"n1"}, "n1")


async def test_a_join_whose_exec_reply_is_lost_is_applied_once(
    client: aioredis.Redis, proxy: LostReplyProxy
) -> None:
    store = Store(client, "lost")
    runs: list[list[str] | None] = []
    proxy.lose_reply_to(EXEC)
    resp = await store.mutate("r", counted(join("alice"), runs))

    assert proxy.lost == 1, "the proxy dropped the EXEC reply"
    assert runs == [None], "the join ran again on state that already held it"
    rec = await store.load("r")
    assert rec is not None and rec.participants["alice"].sid == resp.participant.sid
    assert not resp.HasField("replaced")
    events = [(e.event, e.participant.sid) for e in await store.outbox_peek(100)]
    assert events == [
        ("room_started", ""),
        ("participant_connected", resp.participant.sid),
    ], "one join, one participant_connected, nothing aborted"


async def test_a_join_whose_exec_reply_never_comes_is_applied_once(
    proxy: LostReplyProxy,
) -> None:
    """The primary went silent (no reset): the read timeout fails the EXEC, which had committed."""
    client = redis_client(RedisConfig(address=proxy.address, failover_wait=5, read_timeout=300))
    try:
        store = Store(client, "silent")
        runs: list[list[str] | None] = []
        proxy.lose_reply_to(EXEC, hang=True)
        resp = await store.mutate("r", counted(join("alice"), runs))
        assert proxy.lost == 1
        assert runs == [None], "the join ran again after the read timeout"
        events = [e.event for e in await store.outbox_peek(100)]
        assert events == ["room_started", "participant_connected"]
        rec = await store.load("r")
        assert rec is not None and rec.participants["alice"].sid == resp.participant.sid
    finally:
        await client.aclose()


async def test_a_delete_whose_exec_reply_is_lost_reports_the_closed_room(
    client: aioredis.Redis, proxy: LostReplyProxy
) -> None:
    store = Store(client, "lost")
    await store.mutate("r", join("alice"))
    proxy.lose_reply_to(EXEC)
    closed = await store.mutate("r", rooms.delete_room())  # RoomNotFound when run again

    assert proxy.lost == 1
    assert closed.node_id == "n1", "the caller learns which node to tell"
    assert await store.load("r") is None
    events = [e.event for e in await store.outbox_peek(100)]
    assert events.count("room_finished") == 1


async def test_a_remove_whose_exec_reply_is_lost_answers_the_node(
    client: aioredis.Redis, proxy: LostReplyProxy
) -> None:
    store = Store(client, "lost")
    await store.mutate("r", join("alice"))
    proxy.lose_reply_to(EXEC)
    node = await store.mutate("r", rooms.remove_participant("alice"))  # NotFound when run again

    assert proxy.lost == 1
    assert node == "n1"
    rec = await store.load("r")
    assert rec is not None and "alice" not in rec.participants
    events = [e.event for e in await store.outbox_peek(100)]
    assert events.count("participant_connection_aborted") == 1  # alice never went active


async def test_a_real_conflict_still_runs_the_change_again(
    client: aioredis.Redis, valkey_server: ValkeyServer
) -> None:
    """Another writer between the read and the EXEC: no marker of ours landed, so the change re-runs."""
    store = Store(client, "lost")
    await store.mutate("r", join("alice"))
    other = redis.Redis(host="127.0.0.1", port=valkey_server.port)
    runs: list[list[str] | None] = []
    inner = join("bob")

    def fn(rec: RoomRecord | None) -> tuple[RoomRecord | None, pb.JoinRoomResponse]:
        if not runs:  # another writer touches the watched room before our EXEC
            other.hset(f"lost:room:{room_token('r')}", "other", "1")
        runs.append(None if rec is None else sorted(rec.participants))
        return inner(rec)

    try:
        resp = await store.mutate("r", fn)
    finally:
        other.close()
    assert runs == [["alice"], ["alice"]], "the conflict re-ran the change"
    events = [(e.event, e.participant.sid) for e in await store.outbox_peek(100)]
    assert events[-1] == ("participant_connected", resp.participant.sid)
    assert [e for e, _ in events].count("participant_connected") == 2  # alice, bob


async def test_a_change_whose_result_is_none_is_applied_once_too(
    client: aioredis.Redis, proxy: LostReplyProxy
) -> None:
    """Many changes answer None (participant_active, participant_left, track_published...): a
    landed attempt must be told apart from none landing by more than its result."""
    store = Store(client, "none-result")
    runs: list[list[str] | None] = []
    joined = join("bob")

    def answer_none(rec: RoomRecord | None) -> tuple[RoomRecord | None, None]:
        record, _ = joined(rec)
        return record, None

    proxy.lose_reply_to(EXEC)
    result: object = await store.mutate("r", counted(answer_none, runs))
    assert result is None
    assert proxy.lost == 1
    assert runs == [None], "a change answering None ran again after its EXEC had landed"
    events = [e.event for e in await store.outbox_peek(100)]
    assert events == ["room_started", "participant_connected"]
