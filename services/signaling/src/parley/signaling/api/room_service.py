"""livekit.RoomService: grant checks and limits here, the work in room-state (``parley.roomstate.<Method>``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import Message
from livekit.protocol import models
from livekit.protocol import room as lk

from parley.auth import Claims
from parley.bus import Bus, subjects
from parley.signaling.api import grants, limits
from parley.signaling.api.registry import ApiMethod
from parley.signaling.edge import Edge

SERVICE = "livekit.RoomService"
FORWARD_TIMEOUT = 10.0

Check = Callable[[Any, Claims], None]


def _create(req: lk.CreateRoomRequest, claims: Claims) -> None:
    grants.require_room_create(claims)
    limits.room_name(req.name)
    limits.metadata(req.metadata)


def _list(req: lk.ListRoomsRequest, claims: Claims) -> None:
    grants.require_room_list(claims)


def _delete(req: lk.DeleteRoomRequest, claims: Claims) -> None:
    grants.require_room_create(claims)
    limits.room_name(req.room)


def _admin(req: Any, claims: Claims) -> None:
    grants.require_room_admin(claims, req.room)
    limits.room_name(req.room)


def _admin_identity(req: Any, claims: Claims) -> None:
    _admin(req, claims)
    limits.identity(req.identity)


def _update_participant(req: lk.UpdateParticipantRequest, claims: Claims) -> None:
    _admin_identity(req, claims)
    limits.metadata(req.metadata)
    limits.attributes(req.attributes)


def _update_room_metadata(req: lk.UpdateRoomMetadataRequest, claims: Claims) -> None:
    _admin(req, claims)
    limits.metadata(req.metadata)


TABLE: list[tuple[str, type[Message], type[Message], Check]] = [
    ("CreateRoom", lk.CreateRoomRequest, models.Room, _create),
    ("ListRooms", lk.ListRoomsRequest, lk.ListRoomsResponse, _list),
    ("DeleteRoom", lk.DeleteRoomRequest, lk.DeleteRoomResponse, _delete),
    ("ListParticipants", lk.ListParticipantsRequest, lk.ListParticipantsResponse, _admin),
    ("GetParticipant", lk.RoomParticipantIdentity, models.ParticipantInfo, _admin_identity),
    ("RemoveParticipant", lk.RoomParticipantIdentity, lk.RemoveParticipantResponse, _admin_identity),
    ("MutePublishedTrack", lk.MuteRoomTrackRequest, lk.MuteRoomTrackResponse, _admin_identity),
    ("UpdateParticipant", lk.UpdateParticipantRequest, models.ParticipantInfo, _update_participant),
    ("UpdateSubscriptions", lk.UpdateSubscriptionsRequest, lk.UpdateSubscriptionsResponse, _admin_identity),
    ("SendData", lk.SendDataRequest, lk.SendDataResponse, _admin),
    ("UpdateRoomMetadata", lk.UpdateRoomMetadataRequest, models.Room, _update_room_metadata),
]


def _forwarder(
    bus: Bus, name: str, response_type: type[Message], check: Check
) -> Callable[[Any, Claims], Awaitable[Message]]:
    subject = subjects.room_state_rpc(name)

    async def handler(request: Any, claims: Claims) -> Message:
        check(request, claims)
        return await bus.request(subject, request, response_type, timeout=FORWARD_TIMEOUT)

    return handler


def methods(edge: Edge) -> list[ApiMethod]:
    return [
        ApiMethod(SERVICE, name, req, resp, _forwarder(edge.bus, name, resp, check))
        for name, req, resp, check in TABLE
    ]
