"""Server frames to a worker: published to the edge that holds its WebSocket."""

from __future__ import annotations

from livekit.protocol import agent

from parley.bus import Bus
from parley.dispatch.records import WorkerRecord
from parley.protocol.gen.dispatch.v1.dispatch_pb2 import ServerFrame


async def send(bus: Bus, reply_subject: str, connection_id: str, msg: agent.ServerMessage) -> None:
    frame = ServerFrame(connection_id=connection_id, frame=msg.SerializeToString())
    await bus.publish(reply_subject, frame)


async def send_to_worker(bus: Bus, rec: WorkerRecord, msg: agent.ServerMessage) -> None:
    await send(bus, rec.reply_subject, rec.connection_id, msg)


async def close(bus: Bus, reply_subject: str, connection_id: str) -> None:
    await bus.publish(reply_subject, ServerFrame(connection_id=connection_id, close=True))
