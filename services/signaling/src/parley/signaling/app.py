"""Build the edge: one aiohttp server for HTTP/WebSocket/Twirp, plus the gRPC API.

Each area registers its own routes: ``rtc`` (/rtc, /rtc/v1), ``api`` (Twirp and gRPC),
``agent_ws`` (/agent) and ``meet`` (the page at /).
"""

from __future__ import annotations

from aiohttp import web

from parley.auth import TokenVerifier
from parley.observability import get_logger
from parley.runtime import ServiceContext
from parley.signaling import agent_ws, api, http_errors, meet, rtc
from parley.signaling.config import SignalingConfig
from parley.signaling.cors import cors_middleware
from parley.signaling.edge import Edge
from parley.signaling.readiness import Readiness, add_readyz, readiness_gate, required_services

log = get_logger("parley.signaling")


class SignalingService:
    def __init__(self, config: SignalingConfig, ctx: ServiceContext) -> None:
        ctx.bus.responder_wait = config.signaling.responder_wait
        self.edge = Edge(config=config, bus=ctx.bus, verifier=TokenVerifier(config.keys), edge_id=ctx.node_id)
        required = required_services(config.signaling.ready_requires, turn_enabled=config.turn.enabled)
        self.readiness = Readiness(ctx.bus, required, self.edge.tasks)
        self.app = web.Application(
            middlewares=[cors_middleware, readiness_gate(self.readiness)],
            client_max_size=config.signaling.max_request_bytes,
        )
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        await self.readiness.start()
        add_readyz(self.app)
        http_errors.install()
        await rtc.setup(self.app, self.edge)
        await api.setup(self.app, self.edge)
        await agent_ws.setup(self.app, self.edge)
        await meet.setup(self.app, self.edge)
        if not any(
            r.method == "GET" and r.resource and r.resource.canonical == "/" for r in self.app.router.routes()
        ):
            self.app.router.add_get("/", _ok)
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        config = self.edge.config
        for host in config.bind_addresses:
            site = web.TCPSite(self._runner, host, config.port)
            await site.start()
        log.info("edge listening", port=config.port, addresses=config.bind_addresses)

    async def drain(self) -> None:
        self.edge.draining = True

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.readiness.aclose()
        await self.edge.tasks.aclose()

    def healthy(self) -> bool:
        return not self.edge.draining

    def ready(self) -> bool:
        """The health port's /readyz: what the edge's own GET / and /readyz say."""
        return self.readiness.ready


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="OK")


async def build(config: SignalingConfig, ctx: ServiceContext) -> SignalingService:
    return SignalingService(config, ctx)
