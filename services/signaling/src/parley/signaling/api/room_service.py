"""livekit.RoomService: grant checks and limits here, the work in room-state (``parley.roomstate.<Method>``)."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from livekit.protocol import models
from livekit.protocol import room as lk

from parley.auth import Claims
from parley.bus import Bus, subjects
from parley.signaling.api import grants, limits
from parley.signaling.api.errors import invalid
from parley.signaling.api.forwarding import Route, forwarded_methods, room_admin
from parley.signaling.api.registry import ApiMethod
from parley.signaling.edge import Edge

SERVICE = "livekit.RoomService"
FORWARD_TIMEOUT = 10.0
RPC_DEFAULT_TIMEOUT_MS = 10_000
RPC_MARGIN = 15.0
"""Seconds on top of PerformRpc's response timeout: more than room-state's own margin (10 s), so
room-state's answer (the node's RPC error or its bus timeout) arrives before the edge gives up."""


def _create(req: lk.CreateRoomRequest, claims: Claims) -> None:
    grants.require_room_create(claims)
    limits.room_name(req.name)
    limits.metadata(req.metadata)


def _list(req: lk.ListRoomsRequest, claims: Claims) -> None:
    grants.require_room_list(claims)


def _delete(req: lk.DeleteRoomRequest, claims: Claims) -> None:
    grants.require_room_create(claims)
    limits.room_name(req.room)


def _admin_identity(req: Any, claims: Claims) -> None:
    room_admin(req, claims)
    limits.identity(req.identity)


def _update_participant(req: lk.UpdateParticipantRequest, claims: Claims) -> None:
    _admin_identity(req, claims)
    limits.metadata(req.metadata)
    limits.attributes(req.attributes)


def _update_room_metadata(req: lk.UpdateRoomMetadataRequest, claims: Claims) -> None:
    room_admin(req, claims)
    limits.metadata(req.metadata)


TABLE: list[Route] = [
    ("CreateRoom", lk.CreateRoomRequest, models.Room, _create),
    ("ListRooms", lk.ListRoomsRequest, lk.ListRoomsResponse, _list),
    ("DeleteRoom", lk.DeleteRoomRequest, lk.DeleteRoomResponse, _delete),
    ("ListParticipants", lk.ListParticipantsRequest, lk.ListParticipantsResponse, room_admin),
    ("GetParticipant", lk.RoomParticipantIdentity, models.ParticipantInfo, _admin_identity),
    ("RemoveParticipant", lk.RoomParticipantIdentity, lk.RemoveParticipantResponse, _admin_identity),
    ("MutePublishedTrack", lk.MuteRoomTrackRequest, lk.MuteRoomTrackResponse, _admin_identity),
    ("UpdateParticipant", lk.UpdateParticipantRequest, models.ParticipantInfo, _update_participant),
    ("UpdateSubscriptions", lk.UpdateSubscriptionsRequest, lk.UpdateSubscriptionsResponse, _admin_identity),
    ("SendData", lk.SendDataRequest, lk.SendDataResponse, room_admin),
    ("UpdateRoomMetadata", lk.UpdateRoomMetadataRequest, models.Room, _update_room_metadata),
]


def _perform_rpc_method(bus: Bus) -> ApiMethod:
    """PerformRpc waits as long as the RPC may take, so it is not a fixed-timeout ``Route``."""

    async def handler(req: lk.PerformRpcRequest, claims: Claims) -> Message:
        room_admin(req, claims)
        limits.identity(req.destination_identity)
        if not req.method:
            raise invalid("rpc method is required")
        timeout_ms = req.response_timeout_ms or RPC_DEFAULT_TIMEOUT_MS
        return await bus.request(
            subjects.room_state_rpc("PerformRpc"),
            req,
            lk.PerformRpcResponse,
            timeout=timeout_ms / 1000 + RPC_MARGIN,
        )

    return ApiMethod(SERVICE, "PerformRpc", lk.PerformRpcRequest, lk.PerformRpcResponse, handler)


def methods(edge: Edge) -> list[ApiMethod]:
    table = forwarded_methods(edge.bus, SERVICE, TABLE, subjects.room_state_rpc, FORWARD_TIMEOUT)
    return [*table, _perform_rpc_method(edge.bus)]
