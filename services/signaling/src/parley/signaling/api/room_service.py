"""livekit.RoomService: grant checks and limits here, the work in room-state (``parley.roomstate.<Method>``)."""

from __future__ import annotations

from typing import Any

from livekit.protocol import models
from livekit.protocol import room as lk

from parley.auth import Claims
from parley.bus import subjects
from parley.signaling.api import grants, limits
from parley.signaling.api.forwarding import Route, forwarded_methods, room_admin
from parley.signaling.api.registry import ApiMethod
from parley.signaling.edge import Edge

SERVICE = "livekit.RoomService"
FORWARD_TIMEOUT = 10.0


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


def methods(edge: Edge) -> list[ApiMethod]:
    return forwarded_methods(edge.bus, SERVICE, TABLE, subjects.room_state_rpc, FORWARD_TIMEOUT)
