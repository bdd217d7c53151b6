"""The connection's writer: a write to a closing socket ends it quietly; other errors still raise."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from aiohttp import ClientConnectionResetError, web
from livekit.protocol import rtc

from parley.auth import Claims
from parley.observability import TaskSet
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.signaling.rtc.connection import ClientConnection
from parley.signaling.rtc.relay import Outbox, Relay

pytestmark = pytest.mark.unit


class FakeWs:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.closed = False
        self.sent: list[bytes] = []

    async def send_bytes(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append(data)

    async def close(self, **_: Any) -> bool:
        self.closed = True
        return True


def connection(ws: FakeWs) -> ClientConnection:
    return ClientConnection(
        ws=cast(web.WebSocketResponse, ws),
        relay=cast(Relay, None),
        outbox=Outbox("CO_test"),
        node_id="SFU_x",
        room_name="r",
        participant_sid="PA_x",
        claims=Claims(identity="a"),
        secret="x" * 32,
    )


def frame() -> relay_pb2.ServerSignal:
    return relay_pb2.ServerSignal(
        connection_id="CO_test", response=rtc.SignalResponse(pong=1).SerializeToString()
    )


async def test_closing_transport_ends_the_writer_without_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    conn = connection(FakeWs(ClientConnectionResetError("Cannot write to closing transport")))
    conn.outbox.queue.put_nowait(frame())
    tasks = TaskSet("test")
    with caplog.at_level(logging.DEBUG):
        task = tasks.spawn(conn._write(tasks))
        await asyncio.wait_for(task, 5)
    assert task.exception() is None
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)
    await tasks.aclose()


async def test_a_closed_socket_ends_the_writer() -> None:
    ws = FakeWs(None)
    ws.closed = True
    conn = connection(ws)
    conn.outbox.queue.put_nowait(frame())
    await asyncio.wait_for(conn._write(TaskSet("test")), 5)
    assert ws.sent == []


async def test_other_write_errors_are_not_hidden() -> None:
    conn = connection(FakeWs(RuntimeError("boom")))
    conn.outbox.queue.put_nowait(frame())
    with pytest.raises(RuntimeError, match="boom"):
        await asyncio.wait_for(conn._write(TaskSet("test")), 5)


async def test_frames_are_written_in_order_until_close() -> None:
    ws = FakeWs(None)
    conn = connection(ws)
    tasks = TaskSet("test")
    conn.outbox.queue.put_nowait(frame())
    conn.outbox.queue.put_nowait(relay_pb2.ServerSignal(connection_id="CO_test", close=True))
    await asyncio.wait_for(conn._write(tasks), 5)
    assert len(ws.sent) == 1 and ws.closed
    await tasks.aclose()
