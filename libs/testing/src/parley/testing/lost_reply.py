"""A TCP proxy in front of Redis/Valkey that loses one reply: the server applies the command, the
client never hears back (a connection dropped, or a primary failing over, at the worst moment).

``LostReplyProxy(target_port)`` pipes every connection to the target. ``lose_reply_to(pattern)``
arms it once: the next client chunk holding ``pattern`` (bytes of the RESP request, e.g.
``b"$4\\r\\nEXEC\\r\\n"`` or a key name) is forwarded; when the server's first bytes after it come
back (so the server has run it), they are dropped and the client's connection is aborted (with
``hang=True`` it stays open and silent instead: a primary gone without a reset, which only a read
timeout notices). The server side is left to drain, so everything forwarded is applied. ``lost``
counts dropped replies.
"""

from __future__ import annotations

import asyncio
import contextlib

CHUNK = 65536


class LostReplyProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._pattern: bytes | None = None
        self._hang = False
        self.port = 0
        self.lost = 0
        """Replies dropped so far."""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> LostReplyProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def lose_reply_to(self, pattern: bytes, *, hang: bool = False) -> None:
        """Drop the reply to the next request chunk that holds ``pattern`` (once); then abort that
        connection, or with ``hang`` leave it open and silent."""
        self._pattern = pattern
        self._hang = hang

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        doomed = asyncio.Event()
        for coro in (self._up(reader, up_writer, doomed), self._down(up_reader, writer, doomed)):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _up(
        self, client: asyncio.StreamReader, server: asyncio.StreamWriter, doomed: asyncio.Event
    ) -> None:
        try:
            while data := await client.read(CHUNK):
                if self._pattern is not None and self._pattern in data:
                    self._pattern = None
                    doomed.set()
                server.write(data)
                await server.drain()
                if doomed.is_set():
                    return  # nothing more from this client reaches the server
        except (ConnectionError, OSError):
            pass

    async def _down(
        self, server: asyncio.StreamReader, client: asyncio.StreamWriter, doomed: asyncio.Event
    ) -> None:
        try:
            while data := await server.read(CHUNK):
                if doomed.is_set():
                    self.lost += 1
                    if not self._hang:
                        client.transport.abort()
                    while await server.read(CHUNK):  # the server finishes; its replies go nowhere
                        pass
                    return
                client.write(data)
                await client.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                client.close()
