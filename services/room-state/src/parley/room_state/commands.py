"""RoomCommands to the SFU node hosting a room. State is committed first; a silent node is logged."""

from __future__ import annotations

from parley.bus import Bus, BusError, rpcs
from parley.observability import get_logger
from parley.protocol.gen.sfu.v1 import node_pb2

log = get_logger("parley.room_state.commands")


class NodeCommands:
    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    async def request(
        self, node_id: str, command: node_pb2.RoomCommand, timeout: float
    ) -> node_pb2.RoomCommandResult:
        """A command whose answer the caller needs: the node's errors pass through."""
        return await self._bus.call(rpcs.ROOM_COMMAND, command, topic=node_id, timeout=timeout)

    async def send(self, node_id: str, command: node_pb2.RoomCommand) -> node_pb2.RoomCommandResult | None:
        if not node_id:
            return None
        kind = command.WhichOneof("command")
        try:
            return await self._bus.call(rpcs.ROOM_COMMAND, command, topic=node_id, timeout=self._timeout)
        except BusError as exc:
            log.warning(
                "room command not applied by node; state is committed",
                room=command.room_name,
                node=node_id,
                command=kind,
                error=str(exc),
            )
            return None
