"""Per-participant quota of live TURN credentials.

Every IceServers answer that carries TURN servers issues one credential (one username shared by
all servers of the answer). A participant (room + identity) may hold at most
``turn.max_allocations_per_participant`` credentials that have not expired yet.
"""

from __future__ import annotations

import time
import uuid
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from parley.observability import get_logger

log = get_logger("parley.turn_alloc.quota")

# KEYS[1] = the participant's set; ARGV = now, expires_at, limit, member. A member already in the
# set is this call repeated by the Redis client (its reply lost): it answers like the first run.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return 1
"""


class Quota(Protocol):
    async def take(self, key: str, *, expires_at: float, limit: int) -> bool:
        """Count one credential valid until ``expires_at``; False when ``limit`` are live already."""
        ...

    async def aclose(self) -> None: ...


class RedisQuota:
    """Shared by every turn-alloc instance: a sorted set of expiry times per participant."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_TAKE)

    async def take(self, key: str, *, expires_at: float, limit: int) -> bool:
        """Fails open: with Redis unreachable the credential is issued uncounted (and logged),
        because a participant without TURN may not connect at all."""
        try:
            result = await self._script(
                keys=[f"{self._prefix}:turn:quota:{key}"],
                args=[time.time(), expires_at, limit, uuid.uuid4().hex],
            )
        except (RedisError, OSError) as exc:
            log.warning("TURN quota store unreachable: credential not counted", key=key, error=str(exc))
            return True
        return bool(int(result))

    async def aclose(self) -> None:
        await self._client.aclose()


class MemoryQuota:
    """Counts only what this process issued: right for one instance (dev), too lenient for more."""

    SWEEP_AT = 10_000

    def __init__(self) -> None:
        self._issued: dict[str, list[float]] = {}

    async def take(self, key: str, *, expires_at: float, limit: int) -> bool:
        now = time.time()
        if len(self._issued) >= self.SWEEP_AT:
            self._issued = {k: v for k, v in self._issued.items() if max(v, default=0.0) > now}
        live = [t for t in self._issued.get(key, []) if t > now]
        if len(live) >= limit:
            self._issued[key] = live
            return False
        live.append(expires_at)
        self._issued[key] = live
        return True

    async def aclose(self) -> None:
        self._issued.clear()
