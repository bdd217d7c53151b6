"""Build turn-alloc: the health monitor, the quota store and the IceServers responder."""

from __future__ import annotations

from typing import Any

from parley.bus import Rpc, Subscription, bind, rpcs, serve_all
from parley.observability import get_logger
from parley.runtime import ServiceContext, redis_client
from parley.turn_alloc.allocator import IceServerAllocator
from parley.turn_alloc.config import TurnAllocConfig
from parley.turn_alloc.health import HealthMonitor
from parley.turn_alloc.quota import MemoryQuota, Quota, RedisQuota

log = get_logger("parley.turn_alloc")

SERVES: tuple[Rpc[Any, Any], ...] = (rpcs.ICE_SERVERS,)
"""What turn-alloc serves (queue group ``turn-alloc``)."""


def make_quota(config: TurnAllocConfig) -> Quota:
    if config.turn_alloc.quota_store == "memory":
        return MemoryQuota()
    return RedisQuota(redis_client(config.redis), config.redis.key_prefix)


class TurnAllocService:
    def __init__(self, config: TurnAllocConfig, ctx: ServiceContext) -> None:
        self.config = config
        self.bus = ctx.bus
        turn = config.turn
        self.monitor = HealthMonitor(
            turn.servers if turn.enabled else [],
            interval=turn.health_interval,
            timeout=config.turn_alloc.probe_timeout,
            unhealthy_after=config.turn_alloc.unhealthy_after,
        )
        self.quota = make_quota(config)
        self.allocator = IceServerAllocator(config, self.monitor, self.quota)
        self._subscription: Subscription | None = None
        self._draining = False

    async def start(self) -> None:
        self.monitor.start()
        [self._subscription] = await serve_all(
            self.bus, SERVES, [bind(rpcs.ICE_SERVERS, self.allocator.ice_servers)]
        )
        turn = self.config.turn
        log.info(
            "turn-alloc serving",
            turn_enabled=turn.enabled,
            servers=[f"{s.host}:{s.port}/{s.region or '-'}" for s in turn.servers] if turn.enabled else [],
            stun_servers=self.config.rtc.stun_servers,
            quota_store=self.config.turn_alloc.quota_store,
        )

    async def drain(self) -> None:
        self._draining = True
        await self._unsubscribe()

    async def aclose(self) -> None:
        await self._unsubscribe()
        await self.monitor.aclose()
        await self.quota.aclose()

    def healthy(self) -> bool:
        return not self._draining

    async def _unsubscribe(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None


async def build(config: TurnAllocConfig, ctx: ServiceContext) -> TurnAllocService:
    return TurnAllocService(config, ctx)
