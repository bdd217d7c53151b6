"""Build the dispatch service: worker connections, job scheduling, room events, the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from livekit.protocol import agent_dispatch

from parley.bus import Bus, Subscription, subjects
from parley.dispatch.api import DispatchApi
from parley.dispatch.config import DispatchConfig
from parley.dispatch.connections import Connections
from parley.dispatch.events import JobEvents
from parley.dispatch.jobs import Jobs
from parley.dispatch.rooms import RoomEvents
from parley.dispatch.scheduler import Scheduler
from parley.dispatch.store import Store
from parley.observability import TaskSet, get_logger
from parley.protocol.gen.dispatch.v1 import dispatch_pb2 as pb
from parley.runtime import ServiceContext, redis_client

log = get_logger("parley.dispatch")


class DispatchService:
    def __init__(self, config: DispatchConfig, ctx: ServiceContext) -> None:
        self.config = config
        self.instance = ctx.node_id
        self.bus: Bus = ctx.bus
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

    async def start(self) -> None:
        await self.redis.ping()
        await self.bus.ensure_stream(
            subjects.EVENTS_STREAM, [subjects.EVENTS_ALL], replicas=self.config.nats.stream_replicas
        )
        serve: list[tuple[str, type[Any], Callable[[Any], Awaitable[Any]], str]] = [
            (
                subjects.DISPATCH_WORKER_OPEN,
                pb.WorkerOpenRequest,
                self.connections.open,
                subjects.DISPATCH_QUEUE,
            ),
            (subjects.dispatch_worker_frames(self.instance), pb.WorkerFrame, self.connections.frame, ""),
            (subjects.dispatch_job_offers(self.instance), pb.OfferJobRequest, self.connections.offer, ""),
            (
                subjects.dispatch_rpc("CreateDispatch"),
                agent_dispatch.CreateAgentDispatchRequest,
                self.api.create_dispatch,
                subjects.DISPATCH_QUEUE,
            ),
            (
                subjects.dispatch_rpc("DeleteDispatch"),
                agent_dispatch.DeleteAgentDispatchRequest,
                self.api.delete_dispatch,
                subjects.DISPATCH_QUEUE,
            ),
            (
                subjects.dispatch_rpc("ListDispatch"),
                agent_dispatch.ListAgentDispatchRequest,
                self.api.list_dispatch,
                subjects.DISPATCH_QUEUE,
            ),
        ]
        for subject, request_type, handler, queue in serve:
            self._subs.append(await self.bus.serve(subject, request_type, handler, queue=queue))
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
