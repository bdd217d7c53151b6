"""livekit.RoomService: grant checks and limits here, the work in room-state (``parley.roomstate.<Method>``)."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from livekit.protocol import room as lk

from parley.auth import Claims
from parley.bus import Bus, rpcs
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
    (rpcs.CREATE_ROOM, _create),
    (rpcs.LIST_ROOMS, _list),
    (rpcs.DELETE_ROOM, _delete),
    (rpcs.LIST_PARTICIPANTS, room_admin),
    (rpcs.GET_PARTICIPANT, _admin_identity),
    (rpcs.REMOVE_PARTICIPANT, _admin_identity),
    (rpcs.MUTE_PUBLISHED_TRACK, _admin_identity),
    (rpcs.UPDATE_PARTICIPANT, _update_participant),
    (rpcs.UPDATE_SUBSCRIPTIONS, _admin_identity),
    (rpcs.SEND_DATA, room_admin),
    (rpcs.UPDATE_ROOM_METADATA, _update_room_metadata),
]


def _perform_rpc_method(bus: Bus) -> ApiMethod:
    """PerformRpc waits as long as the RPC may take, so it is not a fixed-timeout ``Route``."""

    async def handler(req: lk.PerformRpcRequest, claims: Claims) -> Message:
        room_admin(req, claims)
        limits.identity(req.destination_identity)
        if not req.method:
            raise invalid("rpc method is required")
        timeout_ms = req.response_timeout_ms or RPC_DEFAULT_TIMEOUT_MS
        return await bus.call(rpcs.PERFORM_RPC, req, timeout=timeout_ms / 1000 + RPC_MARGIN)

    return ApiMethod(SERVICE, "PerformRpc", lk.PerformRpcRequest, lk.PerformRpcResponse, handler)


def methods(edge: Edge) -> list[ApiMethod]:
    table = forwarded_methods(edge.bus, SERVICE, TABLE, FORWARD_TIMEOUT)
    return [*table, _perform_rpc_method(edge.bus)]
