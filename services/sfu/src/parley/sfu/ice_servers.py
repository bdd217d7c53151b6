"""ICE servers for a joining client, from turn-alloc (empty when it does not answer quickly)."""

from __future__ import annotations

from parley.bus import Bus, BusError, rpcs
from parley.protocol.gen.turn.v1 import turn_pb2


async def fetch_ice_servers(
    bus: Bus, *, room: str, identity: str, sid: str, region: str, timeout: float
) -> turn_pb2.IceServersResponse:
    request = turn_pb2.IceServersRequest(
        room_name=room, participant_identity=identity, participant_sid=sid, region=region
    )
    try:
        return await bus.call(rpcs.ICE_SERVERS, request, timeout=timeout)
    except BusError:
        return turn_pb2.IceServersResponse()
