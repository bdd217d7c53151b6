"""Build the dispatch service: worker connections, job scheduling, room events, the API."""

from __future__ import annotations

from typing import Any

from parley.bus import Binding, NatsBus, Rpc, Subscription, bind, rpcs, serve_all, subjects
from parley.dispatch.api import DispatchApi
from parley.dispatch.config import DispatchConfig
from parley.dispatch.connections import Connections
from parley.dispatch.events import JobEvents
from parley.dispatch.jobs import Jobs
from parley.dispatch.rooms import RoomEvents
from parley.dispatch.scheduler import Scheduler
from parley.dispatch.store import Store
from parley.observability import TaskSet, get_logger
from parley.runtime import ServiceContext, redis_client

log = get_logger("parley.dispatch")

SERVES: tuple[Rpc[Any, Any], ...] = (
    rpcs.WORKER_OPEN,
    rpcs.WORKER_FRAME,
    rpcs.OFFER_JOB,
    rpcs.CREATE_DISPATCH,
    rpcs.DELETE_DISPATCH,
    rpcs.LIST_DISPATCH,
)
"""What a dispatch instance serves (``routes`` binds each one)."""


class DispatchService:
    def __init__(self, config: DispatchConfig, ctx: ServiceContext) -> None:
        self.config = config
        self.instance = ctx.node_id
        self.bus: NatsBus = ctx.bus
        self.redis = redis_client(config.redis)
        self.store = Store(self.redis, config.redis.key_prefix)
        self.jobs = Jobs(self.store, self.bus, JobEvents(self.bus, ctx.node_id))
        self.connections = Connections(config, ctx.node_id, self.bus, self.store, self.jobs)
        self.scheduler = Scheduler(config, self.bus, self.store, self.jobs, self.connections)
        self.rooms = RoomEvents(config, self.store, self.jobs, self.scheduler)
        self.api = DispatchApi(self.bus, self.store, self.jobs, self.scheduler)
        self.tasks = TaskSet("dispatch")
        self._subs: list[Subscription] = []
        self._draining = False

    def routes(self) -> list[Binding]:
        """Each RPC of ``SERVES`` with its handler; the instance ones on this instance's subjects."""
        return [
            bind(rpcs.WORKER_OPEN, self.connections.open),
            bind(rpcs.WORKER_FRAME, self.connections.frame),
            bind(rpcs.OFFER_JOB, self.connections.offer),
            bind(rpcs.CREATE_DISPATCH, self.api.create_dispatch),
            bind(rpcs.DELETE_DISPATCH, self.api.delete_dispatch),
            bind(rpcs.LIST_DISPATCH, self.api.list_dispatch),
        ]

    async def start(self) -> None:
        await self.redis.ping()
        await self.bus.ensure_stream(
            subjects.EVENTS_STREAM, [subjects.EVENTS_ALL], replicas=self.config.nats.stream_replicas
        )
        self._subs += await serve_all(self.bus, SERVES, self.routes(), topic=self.instance)
        self.bus.consume(
            subjects.EVENTS_STREAM,
            self.config.dispatch.consumer_name,
            self.rooms.handle,
            filter_subject=subjects.ROOM_EVENTS_ALL,
            batch=1,
        )
        self.tasks.spawn(self.scheduler.run_sweeps(), name="job-sweeps")
        self.tasks.spawn(self.scheduler.run_reaper(), name="worker-reaper")
        log.info("dispatch ready", instance=self.instance)

    async def drain(self) -> None:
        self._draining = True

    async def aclose(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        await self.tasks.aclose()
        await self.rooms.aclose()
        await self.scheduler.aclose()
        await self.redis.aclose()

    def healthy(self) -> bool:
        return not self._draining


async def build(config: DispatchConfig, ctx: ServiceContext) -> DispatchService:
    return DispatchService(config, ctx)
