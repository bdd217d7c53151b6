"""Build room-state: Redis store, node registry, outbox relay, deadlines, and the bus RPCs."""

from __future__ import annotations

from parley.bus import Subscription, serve_all, subjects
from parley.observability import TaskSet, get_logger
from parley.room_state.commands import NodeCommands
from parley.room_state.config import RoomStateConfig
from parley.room_state.handlers import Handlers
from parley.room_state.join_watch import JoinWatch
from parley.room_state.lifecycle import Lifecycle
from parley.room_state.node_loss import NodeLossWatcher
from parley.room_state.nodes import NodeRegistry
from parley.room_state.outbox import OutboxRelay
from parley.room_state.served import SERVES
from parley.room_state.store import Store
from parley.runtime import ServiceContext, redis_client

log = get_logger("parley.room_state")


class RoomStateService:
    def __init__(self, config: RoomStateConfig, ctx: ServiceContext) -> None:
        section = config.room_state
        self.config = config
        self.bus = ctx.bus
        self.redis = redis_client(config.redis)
        self.store = Store(self.redis, config.redis.key_prefix)
        self.nodes = NodeRegistry(ctx.bus, self.store, section.node_ttl)
        self.relay = OutboxRelay(
            ctx.bus, self.store, interval=section.relay_interval, lock_ttl=section.relay_lock_ttl
        )
        self.handlers = Handlers(
            self.store,
            self.nodes,
            NodeCommands(ctx.bus, section.command_timeout),
            self.relay,
            config.room,
            reconcile_grace=section.reconcile_grace,
            on_join=lambda room, sid, node: self.joins.watch(room, sid, node),
        )
        self.joins = JoinWatch(ctx.bus, self.store, self.handlers.rollback_join, section.join_check_delay)
        self.lifecycle = Lifecycle(
            self.store, self.handlers.on_closed, interval=section.timer_interval, lease=section.timer_lease
        )
        self.node_loss = NodeLossWatcher(
            ctx.bus, self.nodes, self.handlers.evacuate, interval=min(1.0, section.node_ttl / 4)
        )
        self.tasks = TaskSet("room-state")
        self._subs: list[Subscription] = []
        self._draining = False

    async def start(self) -> None:
        await self.redis.ping()
        await self.bus.ensure_stream(
            subjects.EVENTS_STREAM, [subjects.EVENTS_ALL], replicas=self.config.nats.stream_replicas
        )
        await self.nodes.start()
        self._subs += await serve_all(self.bus, SERVES, self.handlers.routes())
        self.tasks.spawn(self.relay.run(), name="outbox-relay")
        self.tasks.spawn(self.lifecycle.run(), name="room-deadlines")
        self.tasks.spawn(self.node_loss.run(), name="node-loss")
        self.tasks.spawn(self.joins.run(), name="join-checks")
        self.relay.wake()
        log.info("room-state serving", methods=len(self._subs))

    async def drain(self) -> None:
        self._draining = True
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()

    async def aclose(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        await self.nodes.aclose()
        await self.tasks.aclose()
        await self.relay.flush()
        await self.redis.aclose()

    def healthy(self) -> bool:
        return not self._draining


async def build(config: RoomStateConfig, ctx: ServiceContext) -> RoomStateService:
    return RoomStateService(config, ctx)
