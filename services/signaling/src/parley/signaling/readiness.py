"""Whether the edge can serve: every service it calls answers (GET / and /readyz).

The edge pings each required service (``parley.ping.<service>``, answered by every service's
runtime once started and while not draining) and watches the SFU heartbeats. The SFU counts
once it answers its ping and a non-draining NodeStats heartbeat arrived after room-state last
came up: room-state subscribes to heartbeats before it answers pings, and NATS delivers in order,
so a heartbeat seen then is one room-state has too and it can place a room on that node.
turn-alloc counts only when ``turn.enabled``.

Checked every ``NOT_READY_INTERVAL`` until ready, then every ``READY_INTERVAL``: a few empty
requests per edge, whether anybody asks or not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from google.protobuf.empty_pb2 import Empty
from google.protobuf.message import DecodeError

from parley.bus import Bus, BusError, Delivery, Subscription, rpcs, subjects
from parley.observability import TaskSet, get_logger
from parley.protocol.gen.sfu.v1 import node_pb2

log = get_logger("parley.signaling.readiness")

SFU = "sfu"
ROOM_STATE = "room-state"
TURN_ALLOC = "turn-alloc"
PING_TIMEOUT = 1.0
NOT_READY_INTERVAL = 0.2
READY_INTERVAL = 2.0
READYZ = "/readyz"
HEARTBEAT_FRESH = 10.0
"""Seconds a heartbeat counts (room-state's default ``node_ttl``)."""


class Readiness:
    """Tracks the services of ``required``; ``ready`` is true while all of them answer."""

    def __init__(self, bus: Bus, required: Sequence[str], tasks: TaskSet) -> None:
        self._bus = bus
        self._required = list(dict.fromkeys(required))
        self._tasks = tasks
        self._answering: set[str] = set()
        self._room_state_up_at: float | None = None
        self._heartbeat_at = 0.0
        self._sub: Subscription | None = None
        self._ready = not self._required

    @property
    def ready(self) -> bool:
        return self._ready

    def missing(self) -> list[str]:
        """The required services that do not answer yet, in the configured order."""
        return [s for s in self._required if not self._counts(s)]

    async def start(self) -> None:
        if not self._required:
            return
        if SFU in self._required:
            self._sub = await self._bus.subscribe(subjects.SFU_NODES, self._on_heartbeat)
        self._tasks.spawn(self._run(), name="signaling.readiness")

    async def aclose(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    def _counts(self, service: str) -> bool:
        if service not in self._answering:
            return False
        if service != SFU:
            return True
        fresh = time.monotonic() - self._heartbeat_at < HEARTBEAT_FRESH
        if ROOM_STATE not in self._required:
            return fresh
        up_at = self._room_state_up_at
        return fresh and up_at is not None and self._heartbeat_at > up_at

    async def _on_heartbeat(self, delivery: Delivery) -> None:
        stats = node_pb2.NodeStats()
        try:
            stats.ParseFromString(delivery.data)
        except DecodeError:
            return
        if not stats.draining:
            self._heartbeat_at = time.monotonic()

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(READY_INTERVAL if self._ready else NOT_READY_INTERVAL)

    async def check(self) -> bool:
        """Ping every required service once and update ``ready``."""
        answers = await asyncio.gather(*(self._ping(s) for s in self._required))
        answering = {s for s, ok in zip(self._required, answers, strict=True) if ok}
        if ROOM_STATE in answering and ROOM_STATE not in self._answering:
            self._room_state_up_at = time.monotonic()
        if ROOM_STATE not in answering:
            self._room_state_up_at = None
        self._answering = answering
        ready = not self.missing()
        if ready != self._ready:
            self._ready = ready
            if ready:
                log.info("ready", services=self._required)
            else:
                log.warning("not ready", waiting_for=self.missing())
        return ready

    async def _ping(self, service: str) -> bool:
        try:
            await self._bus.call(rpcs.PING, Empty(), topic=service, timeout=PING_TIMEOUT, responder_wait=0.0)
        except BusError:
            return False
        return True


def required_services(configured: Sequence[str], *, turn_enabled: bool) -> list[str]:
    """``signaling.ready_requires`` without turn-alloc when TURN is off (nobody asks it then)."""
    return [s for s in configured if s != TURN_ALLOC or turn_enabled]


def readiness_gate(readiness: Readiness) -> Middleware:
    """Middleware: GET / (the health check LiveKit tools use) and /readyz answer 503 until ready."""

    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in ("/", READYZ) and request.method in ("GET", "HEAD"):
            if not readiness.ready:
                waiting = ", ".join(readiness.missing()) or "the first check"
                return web.Response(status=503, text=f"Parley is starting: waiting for {waiting}\n")
            if request.path == READYZ:
                return web.Response(text="ready\n")
        return await handler(request)

    return gate


async def _unreachable(_: web.Request) -> web.Response:
    return web.Response(text="ready\n")  # the gate answers first


def add_readyz(app: web.Application) -> None:
    """GET /readyz (answered by the gate; the route makes it a known path for CORS and 404s)."""
    app.router.add_get(READYZ, _unreachable)
