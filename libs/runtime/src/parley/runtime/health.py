"""Per-process HTTP endpoint: /healthz, /readyz and Prometheus /metrics."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from parley.observability import prometheus_text


class HealthServer:
    """Answers 200 on /healthz while ``is_healthy()`` is true, on /readyz while ``is_ready()``
    also is (default: healthy = ready), and serves /metrics."""

    def __init__(
        self,
        host: str,
        port: int,
        is_healthy: Callable[[], bool],
        is_ready: Callable[[], bool] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._is_healthy = is_healthy
        self._is_ready = is_ready
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port

    async def _health(self, _: web.Request) -> web.Response:
        if self._is_healthy():
            return web.Response(text="OK")
        return web.Response(status=503, text="unhealthy")

    async def _ready(self, request: web.Request) -> web.Response:
        if self._is_ready is not None and self._is_healthy() and not self._is_ready():
            return web.Response(status=503, text="not ready")
        return await self._health(request)

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=prometheus_text(), content_type="text/plain", charset="utf-8")

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
