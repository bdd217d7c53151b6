"""Workers, jobs, dispatches and the retry queue in Redis: any dispatch instance can pick up.

Every write is safe to repeat: the Redis client re-sends a command whose reply a dropped connection
or a failover lost (``redis.failover_wait``), so a write that counts or moves something is one Lua
script that checks what is already there (``_ASSIGN``, ``_REMOVE_WORKER``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import redis.asyncio as aioredis
from livekit.protocol import agent, agent_dispatch, models

from parley.bus.subjects import room_token
from parley.dispatch.ids import DispatchID, JobID, WorkerID
from parley.dispatch.records import WorkerRecord

# Take the due jobs (score <= now) and push each one's score to now + lease: a claim.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
"""


# Store an assigned job and count it on its worker only the first time it joins the worker's set.
_ASSIGN = """
redis.call('HSET', KEYS[1], 'job', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('SADD', KEYS[4], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[3], 'assigned', 1) end
redis.call('ZREM', KEYS[5], ARGV[1])
"""

# Forget a worker and return its jobs. They are moved to a key of this call (KEYS[4], kept ARGV[2]
# ms), so a repeat of the call answers the same jobs instead of an empty set.
_REMOVE_WORKER = """
redis.call('SUNIONSTORE', KEYS[4], KEYS[4], KEYS[2])
redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[2]))
redis.call('DEL', KEYS[1], KEYS[2])
for i = 3, #KEYS do
  if i ~= 4 then redis.call('SREM', KEYS[i], ARGV[1]) end
end
return redis.call('SMEMBERS', KEYS[4])
"""
# Mark ``member`` seen (hash member -> the token of the call that marked it first): 1 for the first
# call, and for a repeat of it (same token), 0 for any later call.
_FIRST = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if not owner then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
if owner == ARGV[2] then return 1 end
return 0
"""
MARKERS = ("started", "joined", "published")
"""The once-per-room event markers (``first``); each a hash under ``r:<room>:<marker>:first``."""
REMOVED_TTL_MS = 120_000
"""How long a removed worker's jobs stay readable for a repeat of the removal."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _hash(raw: dict[bytes | str, bytes | str] | dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {_raw(k): _raw(v) for k, v in raw.items()}


TERMINAL = (agent.JobStatus.JS_SUCCESS, agent.JobStatus.JS_FAILED, agent.JobStatus.JS_CANCELLED)


class Store:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self._p = f"{prefix}:dispatch"
        self._claim = redis.register_script(_CLAIM)
        self._assign = redis.register_script(_ASSIGN)
        self._remove_worker = redis.register_script(_REMOVE_WORKER)
        self._first = redis.register_script(_FIRST)

    # keys ------------------------------------------------------------------------------------------
    def _worker(self, wid: str) -> str:
        return f"{self._p}:w:{wid}"

    def _worker_jobs(self, wid: str) -> str:
        return f"{self._p}:w:{wid}:jobs"

    def _pool(self, job_type: int, agent_name: str) -> str:
        return f"{self._p}:pool:{job_type}:{agent_name}"

    def _job(self, jid: str) -> str:
        return f"{self._p}:j:{jid}"

    def _room(self, room: str, part: str) -> str:
        return f"{self._p}:r:{room_token(room)}:{part}"

    @property
    def _workers(self) -> str:
        return f"{self._p}:workers"

    @property
    def _pending(self) -> str:
        return f"{self._p}:pending"

    # workers ---------------------------------------------------------------------------------------
    async def put_worker(self, rec: WorkerRecord) -> None:
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(self._worker(rec.worker_id), mapping=rec.to_fields())  # type: ignore[arg-type]
            p.sadd(self._workers, rec.worker_id)
            p.sadd(self._pool(rec.job_type, rec.agent_name), rec.worker_id)
            await p.execute()

    async def get_worker(self, wid: str) -> WorkerRecord | None:
        raw = _hash(await self.redis.hgetall(self._worker(wid)))  # type: ignore[misc]
        return WorkerRecord.from_fields(wid, raw) if b"connection_id" in raw else None

    async def update_status(self, wid: str, status: int, load: float, job_count: int, now: int) -> None:
        fields = {"status": status, "load": load, "job_count": job_count, "updated_ms": now, "assigned": 0}
        async with self.redis.pipeline(transaction=False) as p:
            p.exists(self._worker(wid))
            p.hset(self._worker(wid), mapping=fields)  # type: ignore[arg-type]
            exists, _ = await p.execute()
        if not exists:  # removed meanwhile: do not resurrect a partial record
            await self.redis.delete(self._worker(wid))

    async def touch_worker(self, wid: str, now: int) -> None:
        await self.redis.hset(self._worker(wid), "updated_ms", now)  # type: ignore[misc]

    async def remove_worker(self, wid: str) -> list[JobID]:
        """Forget the worker; return the jobs it had (to dispatch them again)."""
        rec = await self.get_worker(wid)
        removed = f"{self._worker_jobs(wid)}:removed:{uuid.uuid4().hex}"
        keys = [self._worker(wid), self._worker_jobs(wid), self._workers, removed]
        if rec is not None:
            keys.append(self._pool(rec.job_type, rec.agent_name))
        jobs = await self._remove_worker(keys=keys, args=[wid, REMOVED_TTL_MS])
        return [JobID(_text(j)) for j in jobs]

    async def worker_ids(self) -> list[WorkerID]:
        return [WorkerID(_text(w)) for w in await self.redis.smembers(self._workers)]  # type: ignore[misc]

    async def pool(self, job_type: int, agent_name: str) -> list[WorkerRecord]:
        ids = [_text(w) for w in await self.redis.smembers(self._pool(job_type, agent_name))]  # type: ignore[misc]
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as p:
            for wid in ids:
                p.hgetall(self._worker(wid))
            raws = await p.execute()
        return [
            WorkerRecord.from_fields(wid, raw)
            for wid, raw in zip(ids, raws, strict=True)
            if raw and b"connection_id" in raw
        ]

    async def pool_size(self, job_type: int, agent_name: str) -> int:
        return int(await self.redis.scard(self._pool(job_type, agent_name)))  # type: ignore[misc]

    async def attach_job(self, wid: str, jid: str) -> None:
        await self.redis.sadd(self._worker_jobs(wid), jid)  # type: ignore[misc]

    async def detach_job(self, wid: str, jid: str) -> None:
        await self.redis.srem(self._worker_jobs(wid), jid)  # type: ignore[misc]

    # jobs --------------------------------------------------------------------------------------------
    async def put_job(self, job: agent.Job, *, deadline_ms: int = 0) -> None:
        fields: dict[str, bytes | int] = {"job": job.SerializeToString()}
        if deadline_ms:
            fields["deadline_ms"] = deadline_ms
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(self._job(job.id), mapping=fields)  # type: ignore[arg-type]
            p.sadd(self._room(job.room.name, "jobs"), job.id)
            await p.execute()

    async def assign(self, job: agent.Job, wid: str) -> None:
        """Store the assigned job, count it on its worker (once) and take it off the retry queue."""
        keys = [
            self._job(job.id),
            self._room(job.room.name, "jobs"),
            self._worker(wid),
            self._worker_jobs(wid),
            self._pending,
        ]
        await self._assign(keys=keys, args=[job.id, job.SerializeToString()])

    async def get_job(self, jid: str) -> tuple[agent.Job, int] | None:
        raw = _hash(await self.redis.hgetall(self._job(jid)))  # type: ignore[misc]
        if not raw or b"job" not in raw:
            return None
        job = agent.Job()
        job.ParseFromString(raw[b"job"])
        return job, int(raw.get(b"deadline_ms", b"0"))

    async def room_jobs(self, room: str) -> list[agent.Job]:
        ids = [_text(j) for j in await self.redis.smembers(self._room(room, "jobs"))]  # type: ignore[misc]
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as p:
            for jid in ids:
                p.hget(self._job(jid), "job")
            raws = await p.execute()
        jobs = []
        for raw in raws:
            if raw:
                job = agent.Job()
                job.ParseFromString(_raw(raw))
                jobs.append(job)
        jobs.sort(key=lambda j: (j.state.updated_at, j.id))
        return jobs

    # retry queue -----------------------------------------------------------------------------------
    async def schedule(self, jid: str, due_ms: int) -> None:
        await self.redis.zadd(self._pending, {jid: due_ms})

    async def unschedule(self, jid: str) -> None:
        await self.redis.zrem(self._pending, jid)

    async def claim_due(self, now_ms: int, lease_ms: int, limit: int = 100) -> list[JobID]:
        due = await self._claim(keys=[self._pending], args=[now_ms, now_ms + lease_ms, limit])
        return [JobID(_text(j)) for j in due]

    # rooms and dispatches --------------------------------------------------------------------------
    async def put_room(self, room: models.Room) -> None:
        await self.redis.set(self._room(room.name, "info"), room.SerializeToString())

    async def get_room(self, name: str) -> models.Room:
        raw = await self.redis.get(self._room(name, "info"))
        room = models.Room(name=name)
        if raw:
            room.ParseFromString(_raw(raw))
        return room

    async def first(self, room: str, marker: str, member: str) -> bool:
        """True only the first time ``member`` is marked (idempotent event handling); a repeat of
        this call by the Redis client (its reply lost) answers True again."""
        key = self._room(room, f"{marker}:first")
        return bool(await self._first(keys=[key], args=[member, uuid.uuid4().hex]))

    async def put_dispatch(self, d: agent_dispatch.AgentDispatch) -> None:
        await self.redis.hset(self._room(d.room, "dispatches"), d.id, d.SerializeToString())  # type: ignore[misc]

    async def dispatches(self, room: str) -> list[agent_dispatch.AgentDispatch]:
        raw = await self.redis.hgetall(self._room(room, "dispatches"))  # type: ignore[misc]
        out = []
        for value in raw.values():
            d = agent_dispatch.AgentDispatch()
            d.ParseFromString(_raw(value))
            out.append(d)
        out.sort(key=lambda d: (d.state.created_at, d.id))
        return out

    async def remove_dispatch(self, room: str, did: DispatchID) -> None:
        await self.redis.hdel(self._room(room, "dispatches"), did)  # type: ignore[misc]

    async def close_room(self, room: str, jobs: Iterable[str], seconds: int) -> None:
        """The room finished: drop its dispatches and markers; its jobs stay listable a while."""
        async with self.redis.pipeline(transaction=False) as p:
            p.delete(
                self._room(room, "info"),
                self._room(room, "dispatches"),
                *(self._room(room, f"{marker}:first") for marker in MARKERS),
            )
            p.expire(self._room(room, "jobs"), seconds)
            for jid in jobs:
                p.expire(self._job(jid), seconds)
            await p.execute()
