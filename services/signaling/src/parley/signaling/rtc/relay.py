"""The edge's half of the signal relay: one subscription on ``parley.edge.<id>.signal``.

ServerSignal frames from SFU nodes are routed to the connection they name; each connection
has an ordered outbox that its writer drains onto the WebSocket.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from livekit.protocol import models, rtc

from parley.bus import Bus, Delivery, Subscription, subjects
from parley.observability import get_logger
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.protocol.gen.signal.v1 import relay_pb2

log = get_logger("parley.signaling.rtc.relay")


@dataclass(slots=True)
class Outbox:
    """Frames for one client connection, in the order the SFU sent them."""

    connection_id: str
    queue: asyncio.Queue[relay_pb2.ServerSignal] = field(default_factory=asyncio.Queue)
    node_id: str = ""
    """The SFU node hosting the session (known once joined or resumed)."""


class Relay:
    def __init__(self, bus: Bus, edge_id: str) -> None:
        self._bus = bus
        self._edge_id = edge_id
        self._outboxes: dict[str, Outbox] = {}
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        self._subs.append(await self._bus.subscribe(subjects.edge_signal(self._edge_id), self._on_signal))
        self._subs.append(await self._bus.subscribe(subjects.NODE_LOST, self._on_node_lost))

    async def aclose(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs = []

    def register(self, connection_id: str) -> Outbox:
        outbox = Outbox(connection_id)
        self._outboxes[connection_id] = outbox
        return outbox

    def unregister(self, connection_id: str) -> None:
        self._outboxes.pop(connection_id, None)

    def __len__(self) -> int:
        return len(self._outboxes)

    async def _on_signal(self, delivery: Delivery) -> None:
        signal = relay_pb2.ServerSignal()
        try:
            signal.ParseFromString(delivery.data)
        except DecodeError:
            log.warning("undecodable ServerSignal dropped")
            return
        outbox = self._outboxes.get(signal.connection_id)
        if outbox is None:
            return  # the connection is gone
        outbox.queue.put_nowait(signal)

    async def _on_node_lost(self, delivery: Delivery) -> None:
        """The node hosting some of our sessions died (room-state re-placed its rooms): tell those
        clients to reconnect; they rejoin on the room's new node (no disconnect for the user)."""
        try:
            lost = node_pb2.NodeLost.FromString(delivery.data)
        except DecodeError:
            log.warning("undecodable NodeLost dropped")
            return
        leave = rtc.SignalResponse(
            leave=rtc.LeaveRequest(
                reason=models.DisconnectReason.MIGRATION,
                action=rtc.LeaveRequest.Action.RECONNECT,
                can_reconnect=True,
            )
        ).SerializeToString()
        told = 0
        for outbox in list(self._outboxes.values()):
            if outbox.node_id == lost.node_id:
                outbox.queue.put_nowait(
                    relay_pb2.ServerSignal(connection_id=outbox.connection_id, response=leave, close=True)
                )
                told += 1
        if told:
            log.warning("sfu node lost; clients told to reconnect", node_id=lost.node_id, clients=told)

    async def to_sfu(self, node_id: str, signal: relay_pb2.ClientSignal) -> None:
        await self._bus.publish(subjects.sfu_signal(node_id), signal)
