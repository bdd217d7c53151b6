"""Every Redis access of the egress controller (the one writer of EgressInfo records).

Layout (``P`` = ``redis.key_prefix`` + ``:egress``, ``T`` = ``subjects.room_token(room name)``):

- ``P:info:<EG>`` hash: the record (``codec.py``: info, unredacted request, worker, part, stop, ...).
- ``P:room:T`` set of the room's egress ids; ``P:all`` set of every egress id.
- ``P:due`` sorted set id -> ``due_ms`` (lease deadline or next offer) of every egress not ended.
- ``P:ended`` sorted set id -> ended_at (ms), swept after ``egress.ended_retention``.
- ``P:outbox`` list of RoomEvent bytes, appended in the same MULTI/EXEC as the change.
- ``P:relay`` the outbox relay lock.
- ``P:auto:T`` the room's RoomEgress (auto-egress, ``auto.py``) and ``P:auto:T:claimed`` the set of
  its tracks (and ``participant:<identity>``) already given an egress; both go at room_finished.
- ``P:txn:<uuid>`` a commit's marker (``TXN_MARKER_TTL_MS``), written in the same MULTI/EXEC: a commit
  whose EXEC reply was lost is found and not applied twice (as room-state's store does).

Changes WATCH the record, apply a pure function (``infos.py``), and MULTI/EXEC the record, its
indexes and its events; a concurrent writer makes it run again.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from livekit.protocol import egress as lk
from livekit.protocol import room as lk_room
from redis.exceptions import WatchError

from parley.bus import subjects
from parley.egress import codec, infos
from parley.egress.errors import Conflict
from parley.egress.events import room_event
from parley.egress.interfaces import Mutation
from parley.egress.record import EgressRecord
from parley.protocol.gen.room.v1 import room_state_pb2 as pb

T = TypeVar("T")

MAX_RETRIES = 50
TXN_MARKER_TTL_MS = 120_000
"""How long a commit's marker is kept: longer than the Redis client retries a lost reply."""

# Move due entries forward by a lease and return them: whoever gets one handles it.
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), member)
end
return due
"""

# Renew the leases of the jobs this worker holds (ARGV[1] worker, ARGV[2] deadline, ARGV[3] prefix).
_RENEW = """
for _, id in ipairs(KEYS) do
  local key = ARGV[3] .. ':info:' .. id
  if redis.call('HGET', key, 'worker') == ARGV[1] then
    redis.call('ZADD', ARGV[3] .. ':due', 'XX', tonumber(ARGV[2]), id)
    redis.call('HSET', key, 'due', ARGV[2])
  end
end
return 0
"""

_OUTBOX_TRIM = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
if ARGV[4] == '' or redis.call('LINDEX', KEYS[1], tonumber(ARGV[2]) - 1) == ARGV[4] then
  redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return 1
"""

_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStore:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._r = client
        self._p = f"{prefix}:egress"
        self._claim_due = client.register_script(_CLAIM_DUE)
        self._renew = client.register_script(_RENEW)
        self._outbox_trim = client.register_script(_OUTBOX_TRIM)
        self._release_lock = client.register_script(_RELEASE_LOCK)
        self._peeked: list[bytes] = []

    def _info(self, egress_id: str) -> str:
        return f"{self._p}:info:{egress_id}"

    def _room(self, room_name: str) -> str:
        return f"{self._p}:room:{subjects.room_token(room_name)}"

    @property
    def _all(self) -> str:
        return f"{self._p}:all"

    @property
    def _due(self) -> str:
        return f"{self._p}:due"

    @property
    def _ended(self) -> str:
        return f"{self._p}:ended"

    @property
    def _outbox(self) -> str:
        return f"{self._p}:outbox"

    @property
    def _relay(self) -> str:
        return f"{self._p}:relay"

    async def get(self, egress_id: str) -> EgressRecord | None:
        raw: Any = await self._r.hgetall(self._info(egress_id))  # type: ignore[misc]
        return codec.decode(raw)

    async def mutate(self, egress_id: str, fn: Mutation[T]) -> T:
        """Apply ``fn`` and commit once. A transaction whose EXEC reply is lost (redis-py raises
        WatchError) may have been applied: each EXEC writes its own marker key, and before running
        ``fn`` again the next attempt looks for the earlier attempts' markers; one found means that
        attempt committed (a part must not be counted twice, nor an event written twice)."""
        key = self._info(egress_id)
        sent: dict[str, T] = {}
        async with self._r.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    await pipe.watch(key)
                    if sent and (landed := await _landed(pipe, sent)) is not None:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return landed[0]
                    raw: Any = await pipe.hgetall(key)  # type: ignore[misc]
                    record, result = fn(codec.decode(raw))
                    if record is None:
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return result
                    pipe.multi()  # type: ignore[no-untyped-call]
                    marker = f"{self._p}:txn:{uuid.uuid4().hex}"
                    sent[marker] = result
                    pipe.set(marker, 1, px=TXN_MARKER_TTL_MS)
                    self._queue_writes(pipe, record)
                    await pipe.execute()
                    return result
                except WatchError:
                    continue
        if sent and (landed := await _landed(self._r, sent)) is not None:
            return landed[0]
        raise Conflict()

    def _queue_writes(self, pipe: aioredis.client.Pipeline, r: EgressRecord) -> None:
        pipe.hset(self._info(r.egress_id), mapping=codec.encode(r))  # type: ignore[arg-type]
        if r.created:
            pipe.sadd(self._all, r.egress_id)
            pipe.sadd(self._room(r.room_name), r.egress_id)
        if infos.is_final(r.info.status):
            pipe.zrem(self._due, r.egress_id)
            pipe.zadd(self._ended, {r.egress_id: r.info.ended_at // 1_000_000})
        else:
            pipe.zadd(self._due, {r.egress_id: r.due_ms})
        if r.events:
            pipe.rpush(self._outbox, *[room_event(n, i).SerializeToString() for n, i in r.events])

    async def list_infos(self, room_name: str = "") -> list[lk.EgressInfo]:
        ids = await self._r.smembers(self._room(room_name) if room_name else self._all)  # type: ignore[misc]
        if not ids:
            return []
        pipe = self._r.pipeline(transaction=False)
        for egress_id in sorted(ids):
            pipe.hget(self._info(_text(egress_id)), "info")
        found = [lk.EgressInfo.FromString(raw) for raw in await pipe.execute() if raw]
        found.sort(key=lambda i: (i.started_at, i.egress_id))
        return found

    async def renew(self, worker_id: str, egress_ids: list[str], deadline_ms: int) -> None:
        if egress_ids:
            await self._renew(keys=egress_ids, args=[worker_id, deadline_ms, self._p])

    async def claim_due(self, now_ms: int, lease_ms: int, limit: int = 32) -> list[str]:
        due = await self._claim_due(keys=[self._due], args=[now_ms, lease_ms, limit])
        return [_text(m) for m in due]

    async def forget_ended(self, before_ms: int) -> int:
        ids = [_text(i) for i in await self._r.zrangebyscore(self._ended, "-inf", before_ms)]
        for egress_id in ids:
            record = await self.get(egress_id)
            pipe = self._r.pipeline(transaction=True)
            pipe.delete(self._info(egress_id))
            pipe.srem(self._all, egress_id)
            if record is not None:
                pipe.srem(self._room(record.room_name), egress_id)
            pipe.zrem(self._ended, egress_id)
            await pipe.execute()
        return len(ids)

    async def acquire_relay(self, token: str, ttl_ms: int) -> bool:
        if await self._r.set(self._relay, token, nx=True, px=ttl_ms):
            return True
        current = await self._r.get(self._relay)
        return current is not None and _text(current) == token

    async def release_relay(self, token: str) -> None:
        await self._release_lock(keys=[self._relay], args=[token])

    async def outbox_peek(self, count: int) -> list[pb.RoomEvent]:
        raw = cast(list[bytes], await self._r.lrange(self._outbox, 0, count - 1))  # type: ignore[misc]
        self._peeked = raw
        return [pb.RoomEvent.FromString(item) for item in raw]

    async def outbox_trim(self, count: int, token: str, ttl_ms: int) -> bool:
        last = self._peeked[count - 1] if 0 < count <= len(self._peeked) else b""
        args: list[Any] = [token, count, ttl_ms, last]
        return int(await self._outbox_trim(keys=[self._outbox, self._relay], args=args)) == 1


async def _landed(reader: Any, sent: dict[str, T]) -> tuple[T] | None:
    """The result of the sent attempt whose marker is stored (at most one can have committed)."""
    markers = list(sent)
    found: list[Any] = await reader.mget(markers)
    for marker, value in zip(markers, found, strict=True):
        if value is not None:
            return (sent[marker],)
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


AUTO_TTL_S = 7 * 86400
"""A room's auto-egress state outlives a lost room_finished by at most this long."""


class RedisAutoState:
    """``auto.AutoState`` in Valkey (keys in the module docstring)."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._r = client
        self._p = f"{prefix}:egress:auto"

    def _key(self, room: str) -> str:
        return f"{self._p}:{subjects.room_token(room)}"

    async def keep(self, room: str, config: lk_room.RoomEgress) -> None:
        await self._r.set(self._key(room), config.SerializeToString(), ex=AUTO_TTL_S)

    async def load(self, room: str) -> lk_room.RoomEgress | None:
        data = await self._r.get(self._key(room))
        return None if data is None else lk_room.RoomEgress.FromString(cast(bytes, data))

    async def claim(self, room: str, track_sid: str) -> bool:
        key = self._key(room) + ":claimed"
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.sadd(key, track_sid)
            pipe.expire(key, AUTO_TTL_S)
            added, _ = await pipe.execute()
        return bool(added)

    async def forget(self, room: str) -> None:
        await self._r.delete(self._key(room), self._key(room) + ":claimed")
