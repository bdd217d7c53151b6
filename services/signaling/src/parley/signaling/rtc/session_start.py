"""Admit a client: room-state JoinRoom, then StartSession on the SFU node hosting the room."""

from __future__ import annotations

from livekit.protocol import models

from parley.auth import Claims
from parley.bus import BusError, ErrorCode, RpcError, rpcs
from parley.bus.status import refusal_status
from parley.protocol.gen.room.v1 import room_state_pb2
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.signaling.edge import Edge
from parley.signaling.rtc.errors import BadRequest, RoomNotFound, RtcError, Unauthorized, Unavailable
from parley.signaling.rtc.join_request import ConnectParams

JOIN_TIMEOUT = 5.0
START_TIMEOUT = 10.0


def refusal(exc: BusError, what: str) -> RtcError:
    if isinstance(exc, RpcError):
        if exc.code == ErrorCode.NOT_FOUND:
            return RoomNotFound()
        if exc.code == ErrorCode.UNAUTHENTICATED:
            return Unauthorized(exc.message)
        if exc.code in (ErrorCode.INVALID_ARGUMENT, ErrorCode.MALFORMED):
            return BadRequest(exc.message)
        return RtcError(exc.message or what, refusal_status(exc.code))
    return Unavailable(f"{what}: {exc}")


def participant_request(claims: Claims, params: ConnectParams) -> models.ParticipantInfo:
    return models.ParticipantInfo(
        identity=claims.identity,
        name=claims.name,
        metadata=claims.metadata,
        attributes=claims.attributes,
        kind=claims.participant_kind,
        permission=claims.video.to_permission(),
        client_protocol=params.client_info.client_protocol,
    )


async def join_room(
    edge: Edge, claims: Claims, params: ConnectParams, connection_id: str
) -> room_state_pb2.JoinRoomResponse:
    request = room_state_pb2.JoinRoomRequest(
        room_name=claims.video.room,
        create_if_missing=edge.config.room.auto_create,
        participant=participant_request(claims, params),
        edge_id=edge.edge_id,
        connection_id=connection_id,
        region=edge.config.region,
    )
    if claims.room_config is not None:
        request.room_config.CopyFrom(claims.room_config)
    try:
        return await edge.bus.call(rpcs.JOIN_ROOM, request, timeout=JOIN_TIMEOUT)
    except BusError as exc:
        raise refusal(exc, "could not join room") from exc


async def start_session(
    edge: Edge, joined: room_state_pb2.JoinRoomResponse, params: ConnectParams, connection_id: str
) -> None:
    request = relay_pb2.StartSessionRequest(
        connection_id=connection_id,
        edge_id=edge.edge_id,
        room=joined.room,
        participant=joined.participant,
        auto_subscribe=params.auto_subscribe,
        protocol=params.protocol,
        client_info=params.client_info,
        adaptive_stream=params.adaptive_stream,
        single_peer_connection=params.single_peer_connection,
        region=edge.config.region,
    )
    if params.publisher_offer is not None:
        request.publisher_offer.CopyFrom(params.publisher_offer)
    try:
        await edge.bus.call(rpcs.SESSION_START, request, topic=joined.node_id, timeout=START_TIMEOUT)
    except BusError as exc:
        raise refusal(exc, "could not start session") from exc
