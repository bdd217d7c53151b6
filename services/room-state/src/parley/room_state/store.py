"""Every Redis access of room-state: room records, the event outbox, deadlines and SFU nodes.

Layout (``P`` = ``redis.key_prefix``, ``T`` = ``subjects.room_token(room name)``):

- ``P:room:T`` hash: ``info`` (livekit.Room, counts filled in), ``config`` (RoomConfiguration),
  ``node``, ``seq``, ``had``, ``left``, ``deadline``.
- ``P:room:T:participants`` hash identity -> ParticipantInfo; ``P:room:T:sessions`` identity -> Session.
- ``P:rooms`` set of room names.
- ``P:timers`` sorted set room name -> deadline (ms). Claimed atomically by ``claim_due``.
- ``P:outbox`` list of RoomEvent bytes, appended in the same MULTI/EXEC as the change.
- ``P:relay`` the outbox relay lock (one relay at a time keeps per-room order).
- ``P:nodes`` sorted set node id -> last heartbeat (ms); ``P:node:<id>`` NodeStats with a TTL.
- ``P:txn:<uuid>`` a commit's marker (TTL ``TXN_MARKER_TTL_MS``): written in the same MULTI/EXEC,
  read back when the EXEC reply was lost, so a change is never applied twice.

Changes use optimistic concurrency: WATCH the room's keys, read, apply a pure function,
MULTI/EXEC the writes and the outbox entries; retry when another writer got there first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from livekit.protocol import models
from livekit.protocol.room import RoomConfiguration
from redis.exceptions import WatchError

from parley.bus import subjects
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.room_state.errors import Conflict
from parley.room_state.record import RoomRecord

T = TypeVar("T")
Mutation = Callable[[RoomRecord | None], tuple[RoomRecord | None, T]]
"""Gets the stored room (or None) and returns the room to store (or None: no change) and a result."""

MAX_RETRIES = 50
TXN_MARKER_TTL_MS = 120_000
"""How long a commit's marker (``P:txn:<uuid>``) is kept: longer than a lost EXEC reply can take
to be noticed and the next attempt to read it back (``redis.read_timeout`` + ``failover_wait``)."""

# One round trip for a room's three hashes (on the WATCHing connection).
_READ_ROOM = """
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
"""

# Move due deadlines forward by a lease and return them: whoever gets a room handles it.
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), member)
end
return due
"""

# Remove the first n outbox entries, only while still holding the relay lock, and only while the
# n-th entry is still the one the relay peeked (ARGV[4]): a call repeated after a failover (applied,
# its reply lost) trims nothing more.
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


class Store:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._r = client
        self._p = prefix
        self._claim_due = client.register_script(_CLAIM_DUE)
        self._outbox_trim = client.register_script(_OUTBOX_TRIM)
        self._release_lock = client.register_script(_RELEASE_LOCK)
        self._peeked: list[bytes] = []
        """The outbox entries the last ``outbox_peek`` returned (one relay at a time peeks)."""

    # keys ------------------------------------------------------------------------------------
    def _room_keys(self, name: str) -> tuple[str, str, str]:
        base = f"{self._p}:room:{subjects.room_token(name)}"
        return base, f"{base}:participants", f"{base}:sessions"

    @property
    def _rooms(self) -> str:
        return f"{self._p}:rooms"

    @property
    def _timers(self) -> str:
        return f"{self._p}:timers"

    @property
    def outbox_key(self) -> str:
        return f"{self._p}:outbox"

    @property
    def _relay(self) -> str:
        return f"{self._p}:relay"

    # rooms -----------------------------------------------------------------------------------
    async def load(self, name: str) -> RoomRecord | None:
        k_room, k_parts, k_sess = self._room_keys(name)
        pipe = self._r.pipeline(transaction=False)
        pipe.hgetall(k_room)
        pipe.hgetall(k_parts)
        pipe.hgetall(k_sess)
        room, parts, sess = await pipe.execute()
        return _decode(room, parts, sess)

    async def mutate(self, name: str, fn: Mutation[T]) -> T:
        """Apply ``fn`` to the stored room and commit its changes and events atomically, once.

        A transaction whose EXEC reply is lost (the connection dropped; redis-py raises WatchError)
        may have been applied. Each EXEC also writes a marker key of its own (``P:txn:<uuid>``);
        before running ``fn`` again the next attempt looks for the markers of the earlier ones, on
        the watching connection: one found means that attempt committed, and its result is returned.
        A marker landing later touches the watched room too, so that attempt's EXEC fails again.
        """
        keys = self._room_keys(name)
        sent: dict[str, T] = {}
        """Marker key -> result, for every attempt whose EXEC was sent and not known to fail."""
        async with self._r.pipeline(transaction=True) as pipe:
            for _ in range(MAX_RETRIES):
                try:
                    await pipe.watch(*keys)
                    if sent and (landed := await _landed(pipe, sent)):
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return landed[0]
                    raw: Any = await pipe.eval(_READ_ROOM, 3, *keys)
                    record, result = fn(_decode(*(_pairs(flat) for flat in raw)))
                    if record is None or not _changed(record):
                        await pipe.unwatch()  # type: ignore[no-untyped-call]
                        return result
                    pipe.multi()  # type: ignore[no-untyped-call]
                    marker = f"{self._p}:txn:{uuid.uuid4().hex}"
                    sent[marker] = result
                    pipe.set(marker, 1, px=TXN_MARKER_TTL_MS)
                    self._queue_writes(pipe, keys, record)
                    await pipe.execute()
                    return result
                except WatchError:
                    continue
        if sent and (landed := await _landed(self._r, sent)):
            return landed[0]
        raise Conflict()

    def _queue_writes(
        self, pipe: aioredis.client.Pipeline, keys: tuple[str, str, str], r: RoomRecord
    ) -> None:
        k_room, k_parts, k_sess = keys
        if r.deleted:
            pipe.delete(k_room, k_parts, k_sess)
            pipe.srem(self._rooms, r.name)
            pipe.zrem(self._timers, r.name)
        else:
            r.deadline_ms = r.compute_deadline()
            pipe.hset(
                k_room,
                mapping={
                    "info": r.room_view().SerializeToString(),
                    "config": r.config.SerializeToString(),
                    "node": r.node_id,
                    "seq": r.seq,
                    "had": int(r.had_participant),
                    "left": r.last_left_ms,
                    "deadline": r.deadline_ms,
                    "reports": _encode_reports(r.reports),
                },
            )
            if r.created:
                pipe.sadd(self._rooms, r.name)
            if r.dirty:
                parts: Any = {i: r.participants[i].SerializeToString() for i in sorted(r.dirty)}
                pipe.hset(k_parts, mapping=parts)
                sessions: Any = {
                    i: r.sessions[i].SerializeToString() for i in sorted(r.dirty) if i in r.sessions
                }
                if sessions:
                    pipe.hset(k_sess, mapping=sessions)
            if r.removed:
                pipe.hdel(k_parts, *sorted(r.removed))
                pipe.hdel(k_sess, *sorted(r.removed))
            if r.deadline_ms:
                pipe.zadd(self._timers, {r.name: r.deadline_ms})
            else:
                pipe.zrem(self._timers, r.name)
        if r.events:
            pipe.rpush(self.outbox_key, *[e.SerializeToString() for e in r.events])

    async def list_rooms(self, names: list[str] | None = None) -> list[models.Room]:
        if not names:
            raw_names = await self._r.smembers(self._rooms)
            names = sorted(_text(n) for n in raw_names)
        if not names:
            return []
        pipe = self._r.pipeline(transaction=False)
        for name in names:
            pipe.hget(self._room_keys(name)[0], "info")
        rooms = []
        results: list[Any] = await pipe.execute()
        for raw in results:
            if raw:
                rooms.append(models.Room.FromString(raw))
        return rooms

    # deadlines -------------------------------------------------------------------------------
    async def claim_due(self, now_ms: int, lease_ms: int, limit: int = 32) -> list[str]:
        due = await self._claim_due(keys=[self._timers], args=[now_ms, lease_ms, limit])
        return [_text(m) for m in due]

    async def drop_timer(self, name: str) -> None:
        await self._r.zrem(self._timers, name)

    async def deadline(self, name: str) -> float | None:
        score = await self._r.zscore(self._timers, name)
        return None if score is None else float(score)

    # outbox ----------------------------------------------------------------------------------
    async def acquire_relay(self, token: str, ttl_ms: int) -> bool:
        if await self._r.set(self._relay, token, nx=True, px=ttl_ms):
            return True
        current = await self._r.get(self._relay)
        return current is not None and _text(current) == token

    async def release_relay(self, token: str) -> None:
        await self._release_lock(keys=[self._relay], args=[token])

    async def outbox_peek(self, count: int) -> list[pb.RoomEvent]:
        raw: list[bytes] = cast(list[bytes], await self._r.lrange(self.outbox_key, 0, count - 1))
        self._peeked = raw
        return [pb.RoomEvent.FromString(item) for item in raw]

    async def outbox_trim(self, count: int, token: str, ttl_ms: int) -> bool:
        """Drop the first ``count`` entries (of the last peek); False if the lock was lost (nothing
        removed). Idempotent, as the Redis client repeats a command whose reply a failover lost."""
        last = self._peeked[count - 1] if 0 < count <= len(self._peeked) else b""
        args: list[Any] = [token, count, ttl_ms, last]
        return int(await self._outbox_trim(keys=[self.outbox_key, self._relay], args=args)) == 1

    async def outbox_len(self) -> int:
        return int(await self._r.llen(self.outbox_key))

    # nodes -----------------------------------------------------------------------------------
    async def put_node(self, stats: node_pb2.NodeStats, now_ms: int, ttl_ms: int) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.set(f"{self._p}:node:{stats.node_id}", stats.SerializeToString(), px=ttl_ms)
        pipe.zadd(f"{self._p}:nodes", {stats.node_id: now_ms})
        pipe.zremrangebyscore(f"{self._p}:nodes", "-inf", now_ms - ttl_ms)
        await pipe.execute()

    async def live_nodes(self, now_ms: int, ttl_ms: int) -> list[node_pb2.NodeStats]:
        ids = await self._r.zrangebyscore(f"{self._p}:nodes", now_ms - ttl_ms, "+inf")
        if not ids:
            return []
        raw: list[bytes | None] = cast(
            list[bytes | None], await self._r.mget([f"{self._p}:node:{_text(i)}" for i in ids])
        )
        return [node_pb2.NodeStats.FromString(item) for item in raw if item]


async def _landed(reader: aioredis.Redis, sent: dict[str, T]) -> tuple[T] | None:
    """``(result,)`` of the sent attempt whose marker is stored (at most one can have committed),
    or None when none did; a tuple, because many mutations' result is itself None."""
    markers = list(sent)
    found: list[Any] = await reader.mget(markers)
    for marker, value in zip(markers, found, strict=True):
        if value is not None:
            return (sent[marker],)
    return None


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _changed(record: RoomRecord) -> bool:
    return bool(
        record.created or record.deleted or record.touched or record.dirty or record.removed or record.events
    )


def _decode(
    room: dict[bytes, bytes], parts: dict[bytes, bytes], sess: dict[bytes, bytes]
) -> RoomRecord | None:
    if not room or b"info" not in room:
        return None
    info = models.Room.FromString(room[b"info"])
    config = RoomConfiguration.FromString(room.get(b"config", b""))
    return RoomRecord(
        room=info,
        config=config,
        node_id=room.get(b"node", b"").decode(),
        seq=int(room.get(b"seq", b"0")),
        had_participant=room.get(b"had", b"0") == b"1",
        last_left_ms=int(room.get(b"left", b"0")),
        deadline_ms=int(room.get(b"deadline", b"0")),
        participants={k.decode(): models.ParticipantInfo.FromString(v) for k, v in parts.items()},
        sessions={k.decode(): pb.Session.FromString(v) for k, v in sess.items()},
        reports=_decode_reports(room.get(b"reports", b"")),
    )


def _encode_reports(reports: dict[str, int]) -> str:
    return ",".join(f"{reporter}:{seq}" for reporter, seq in reports.items())


def _decode_reports(raw: bytes) -> dict[str, int]:
    reports = {}
    for item in raw.decode().split(","):
        reporter, _, seq = item.rpartition(":")
        if reporter and seq.isdigit():
            reports[reporter] = int(seq)
    return reports
