"""A client reconnecting with ``reconnect=1``: find its session and rebind it to this connection.

room-state says which node hosts the participant (matched by sid and the token's identity); that
node answers the new connection with ``reconnect`` (ReconnectResponse) and keeps the participant, its
tracks and subscriptions. Any refusal ends in the caller's full-rejoin leave, which every SDK handles.
"""

from __future__ import annotations

from parley.auth import Claims
from parley.bus import BusError, rpcs
from parley.protocol.gen.room.v1 import room_state_pb2
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.signaling.edge import Edge
from parley.signaling.rtc.errors import RtcError
from parley.signaling.rtc.join_request import ConnectParams
from parley.signaling.rtc.session_start import JOIN_TIMEOUT, START_TIMEOUT, refusal


async def resume_session(
    edge: Edge, claims: Claims, params: ConnectParams, connection_id: str
) -> room_state_pb2.LocateParticipantResponse:
    """Raises ``RtcError`` when the session cannot be resumed (gone, moved, not this identity)."""
    if not params.participant_sid:
        raise RtcError("reconnect without a participant sid", 400)
    locate = room_state_pb2.LocateParticipantRequest(
        room_name=claims.video.room, participant_sid=params.participant_sid, identity=claims.identity
    )
    try:
        found = await edge.bus.call(rpcs.LOCATE_PARTICIPANT, locate, timeout=JOIN_TIMEOUT)
        request = relay_pb2.ResumeSessionRequest(
            connection_id=connection_id,
            edge_id=edge.edge_id,
            room_name=claims.video.room,
            participant_sid=params.participant_sid,
            identity=claims.identity,
            reconnect_reason=params.reconnect_reason,  # type: ignore[arg-type]
            protocol=params.protocol,
            client_info=params.client_info,
            region=edge.config.region,
            single_peer_connection=params.single_peer_connection,
        )
        await edge.bus.call(rpcs.SESSION_RESUME, request, topic=found.node_id, timeout=START_TIMEOUT)
    except BusError as exc:
        raise refusal(exc, "could not resume session") from exc
    return found
