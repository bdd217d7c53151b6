"""Build the SFU node service."""

from __future__ import annotations

from parley.runtime import ServiceContext
from parley.sfu import engine
from parley.sfu.config import SfuConfig
from parley.sfu.node import Node


class SfuService:
    def __init__(self, config: SfuConfig, ctx: ServiceContext) -> None:
        media = engine.configure(config.rtc)
        media.cached_send_path = config.sfu.cached_send_path
        self.node = Node(config, ctx.bus, ctx.node_id, media=media)

    async def start(self) -> None:
        await self.node.start()

    @property
    def drain_timeout(self) -> float:
        return self.node.drain_timeout

    async def drain(self) -> None:
        await self.node.drain()

    async def aclose(self) -> None:
        await self.node.aclose()

    def healthy(self) -> bool:
        return not self.node.draining


async def build(config: SfuConfig, ctx: ServiceContext) -> SfuService:
    return SfuService(config, ctx)
