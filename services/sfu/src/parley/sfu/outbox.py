"""Frames to one client: queued synchronously, published in order to the client's edge."""

from __future__ import annotations

import asyncio

from livekit.protocol import rtc

from parley.bus import Bus, subjects
from parley.observability import TaskSet, get_logger
from parley.protocol.gen.signal.v1 import relay_pb2

log = get_logger("parley.sfu.outbox")


class SignalOutbox:
    def __init__(self, bus: Bus, edge_id: str, connection_id: str, tasks: TaskSet) -> None:
        self._bus = bus
        self._subject = subjects.edge_signal(edge_id)
        self.connection_id = connection_id
        self._queue: asyncio.Queue[relay_pb2.ServerSignal | None] = asyncio.Queue()
        self._closed = False
        self._task = tasks.spawn(self._run(), name=f"outbox:{connection_id}")

    def send(self, response: rtc.SignalResponse) -> None:
        if self._closed:
            return
        self._queue.put_nowait(
            relay_pb2.ServerSignal(connection_id=self.connection_id, response=response.SerializeToString())
        )

    def close(self, last: rtc.SignalResponse | None = None) -> None:
        """Send ``last`` (if any), then tell the edge to close the WebSocket."""
        if self._closed:
            return
        signal = relay_pb2.ServerSignal(connection_id=self.connection_id, close=True)
        if last is not None:
            signal.response = last.SerializeToString()
        self._queue.put_nowait(signal)
        self._queue.put_nowait(None)
        self._closed = True

    async def _run(self) -> None:
        while True:
            signal = await self._queue.get()
            if signal is None:
                return
            try:
                await self._bus.publish(self._subject, signal)
            except Exception as exc:
                log.warning("cannot publish to edge", error=str(exc), connection=self.connection_id)
