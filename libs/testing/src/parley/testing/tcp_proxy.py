"""A TCP proxy on loopback that can cut every connection through it, for signalling-drop tests.

``TcpProxy(target_port)`` listens on a free loopback port and pipes each accepted connection to the
target. ``cut()`` drops every open connection at once (both sides see a reset/EOF), as a Wi-Fi blip or
a dead NAT mapping would; ``refuse_for(seconds)`` also refuses new connections for a while. An HTTP
control endpoint (``control_url``: ``POST /cut?refuse=<seconds>``) lets a client process trigger the
cut itself at the moment its scenario chooses; ``before_cut`` lets the test act at that moment
(kill the edge behind the proxy and ``retarget`` it to another one).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from aiohttp import web

CHUNK = 65536


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._control: web.AppRunner | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refuse_until = 0.0
        self.port = 0
        self.control_port = 0
        self.cuts = 0
        self.connections = 0
        self.before_cut: Callable[[], None] | None = None
        """Run by the control endpoint before it cuts (e.g. kill an edge and ``retarget``)."""

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        app = web.Application()
        app.router.add_post("/cut", self._on_cut)
        self._control = web.AppRunner(app)
        await self._control.setup()
        site = web.TCPSite(self._control, "127.0.0.1", 0)
        await site.start()
        self.control_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._control is not None:
            await self._control.cleanup()

    def retarget(self, port: int, host: str = "127.0.0.1") -> None:
        """New connections go to ``host:port`` (a load balancer moving to another edge)."""
        self._target = (host, port)

    def refuse_for(self, seconds: float) -> None:
        self._refuse_until = time.monotonic() + seconds

    def cut(self) -> int:
        """Drop every open connection; returns how many were dropped."""
        pairs = list(self._pairs)
        self._pairs.clear()
        for a, b in pairs:
            for writer in (a, b):
                transport = writer.transport
                with contextlib.suppress(Exception):
                    transport.abort()
        if pairs:
            self.cuts += 1
        return len(pairs)

    async def _on_cut(self, request: web.Request) -> web.Response:
        refuse = float(request.query.get("refuse", "0") or 0)
        if self.before_cut is not None:
            self.before_cut()
        if refuse > 0:
            self.refuse_for(refuse)
        return web.json_response({"dropped": self.cut()})

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refuse_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        pair = (writer, up_writer)
        self._pairs.add(pair)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(CHUNK):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()
