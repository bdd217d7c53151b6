"""Build the egress controller: Redis store, worker registry, placement, leases, outbox, the RPCs,
auto-egress from room events."""

from __future__ import annotations

from typing import Any

from parley.bus import Binding, Bus, DurablePublisher, Rpc, Subscription, bind, rpcs, serve_all, subjects
from parley.egress.auto import AutoEgress
from parley.egress.config import EgressConfig, EgressSection
from parley.egress.controller import Controller
from parley.egress.interfaces import EgressStore
from parley.egress.leases import LeaseSweeper
from parley.egress.outbox import OutboxRelay
from parley.egress.placement import Placer
from parley.egress.store import RedisAutoState, RedisStore
from parley.egress.workers import WorkerRegistry
from parley.observability import TaskSet, get_logger
from parley.runtime import ServiceContext, redis_client

log = get_logger("parley.egress")

SERVES: tuple[Rpc[Any, Any], ...] = (
    rpcs.START_EGRESS,
    rpcs.START_ROOM_COMPOSITE_EGRESS,
    rpcs.START_WEB_EGRESS,
    rpcs.START_PARTICIPANT_EGRESS,
    rpcs.START_TRACK_COMPOSITE_EGRESS,
    rpcs.START_TRACK_EGRESS,
    rpcs.UPDATE_LAYOUT,
    rpcs.UPDATE_STREAM,
    rpcs.LIST_EGRESS,
    rpcs.STOP_EGRESS,
    rpcs.EGRESS_REPORT,
)
"""What an egress controller instance serves (queue group ``egress``)."""


class Parts:
    """The controller's components, wired over any bus and store (the service and unit tests)."""

    def __init__(
        self, bus: Bus, events: DurablePublisher, store: EgressStore, section: EgressSection
    ) -> None:
        self.store = store
        self.relay = OutboxRelay(
            events, store, interval=section.relay_interval, lock_ttl=section.relay_lock_ttl
        )
        self.workers = WorkerRegistry(
            bus,
            store,
            ttl=section.worker_ttl,
            lease=section.lease,
            max_utilization=section.max_cpu_utilization,
        )
        self.placer = Placer(
            bus, self.workers, offer_timeout=section.offer_timeout, rounds=section.offer_rounds
        )
        self.controller = Controller(bus, store, self.placer, section, on_commit=self.relay.wake)
        self.leases = LeaseSweeper(store, self.placer, section, on_commit=self.relay.wake)

    def routes(self) -> list[Binding]:
        c = self.controller
        return [
            bind(rpcs.START_EGRESS, c.start_egress),
            bind(rpcs.START_ROOM_COMPOSITE_EGRESS, c.start_room_composite),
            bind(rpcs.START_WEB_EGRESS, c.start_web),
            bind(rpcs.START_PARTICIPANT_EGRESS, c.start_participant),
            bind(rpcs.START_TRACK_COMPOSITE_EGRESS, c.start_track_composite),
            bind(rpcs.START_TRACK_EGRESS, c.start_track),
            bind(rpcs.UPDATE_LAYOUT, c.update_layout),
            bind(rpcs.UPDATE_STREAM, c.update_stream),
            bind(rpcs.LIST_EGRESS, c.list_egress),
            bind(rpcs.STOP_EGRESS, c.stop_egress),
            bind(rpcs.EGRESS_REPORT, c.report),
        ]

    async def serve(self, bus: Bus, tasks: TaskSet) -> list[Subscription]:
        await self.workers.start()
        subs = await serve_all(bus, SERVES, self.routes())
        tasks.spawn(self.relay.run(), name="egress-outbox")
        tasks.spawn(self.leases.run(), name="egress-leases")
        self.relay.wake()
        return subs


class EgressService:
    def __init__(self, config: EgressConfig, ctx: ServiceContext) -> None:
        self.config = config
        self.bus = ctx.bus
        self.redis = redis_client(config.redis)
        self.parts = Parts(ctx.bus, ctx.bus, RedisStore(self.redis, config.redis.key_prefix), config.egress)
        c = self.parts.controller
        self.auto = AutoEgress(
            RedisAutoState(self.redis, config.redis.key_prefix),
            c.start_track,
            c.start_room_composite,
            c.start_participant,
        )
        self.tasks = TaskSet("egress")
        self._subs: list[Subscription] = []
        self._draining = False

    async def start(self) -> None:
        await self.redis.ping()
        await self.bus.ensure_stream(
            subjects.EVENTS_STREAM, [subjects.EVENTS_ALL], replicas=self.config.nats.stream_replicas
        )
        self._subs += await self.parts.serve(self.bus, self.tasks)
        self.bus.consume(
            subjects.EVENTS_STREAM,
            self.config.egress.auto_consumer,
            self.auto.handle,
            filter_subject=subjects.ROOM_EVENTS_ALL,
            batch=1,  # one event at a time: a room's events in order (created fresh, it reads the stream's
            # retained events too: a running room's tracks are recorded, an ended room's starts are refused)
        )
        log.info("egress controller serving", methods=len(self._subs))

    async def drain(self) -> None:
        self._draining = True
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()

    async def aclose(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        await self.parts.workers.aclose()
        await self.tasks.aclose()
        await self.parts.relay.flush()
        await self.redis.aclose()

    def healthy(self) -> bool:
        return not self._draining


async def build(config: EgressConfig, ctx: ServiceContext) -> EgressService:
    return EgressService(config, ctx)
