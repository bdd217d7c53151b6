"""Build the egress worker service (its id is the process's node id)."""

from __future__ import annotations

from parley.egress_worker.config import EgressWorkerConfig
from parley.egress_worker.worker import EgressWorker
from parley.observability import get_logger
from parley.runtime import ServiceContext

log = get_logger("parley.egress_worker")


class EgressWorkerService:
    drain_timeout = 60.0
    """Seconds running recordings get to finish, upload and report on SIGTERM."""

    def __init__(self, config: EgressWorkerConfig, ctx: ServiceContext) -> None:
        self.worker = EgressWorker(ctx.bus, config.node_id, config.egress_worker)

    async def start(self) -> None:
        await self.worker.start()

    async def drain(self) -> None:
        await self.worker.drain()

    async def aclose(self) -> None:
        await self.worker.aclose()

    def healthy(self) -> bool:
        return not self.worker.draining


async def build(config: EgressWorkerConfig, ctx: ServiceContext) -> EgressWorkerService:
    return EgressWorkerService(config, ctx)
