"""Node loss: an SFU node that stops heartbeating for ``room_state.node_ttl`` is lost.

Its rooms' participants leave (``participant_left``, reason MIGRATION), the rooms are placed on
another live node, and a ``NodeLost`` notice tells every edge to send that node's clients a
reconnect (they rejoin on the room's new node with the same identities; agents, being SDK clients,
rejoin too). Every room-state instance watches; the mutations are idempotent, so two instances
seeing the same loss change the state once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from parley.bus import Bus, subjects
from parley.observability import get_logger
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.room_state.nodes import NodeRegistry

log = get_logger("parley.room_state.node_loss")

Evacuate = Callable[[str], Awaitable[list[str]]]


class NodeLossWatcher:
    def __init__(self, bus: Bus, nodes: NodeRegistry, evacuate: Evacuate, interval: float) -> None:
        self._bus = bus
        self._nodes = nodes
        self._evacuate = evacuate
        self._interval = interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for node_id in self._nodes.lost():
                try:
                    await self.handle(node_id)
                except Exception:
                    log.exception("cannot evacuate a lost node", node_id=node_id)

    async def handle(self, node_id: str) -> None:
        rooms = await self._evacuate(node_id)
        log.warning("sfu node lost; rooms placed again", node_id=node_id, rooms=len(rooms))
        await self._bus.publish(subjects.NODE_LOST, node_pb2.NodeLost(node_id=node_id, rooms=rooms))
