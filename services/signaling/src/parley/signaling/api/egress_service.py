"""livekit.Egress: the roomRecord grant checked here (LiveKit's ``EnsureRecordPermission``: the
token's room is not compared), the work done by the egress controller (``parley.egress.<Method>``).
With no controller running the bus answers ``unavailable`` after ``responder_wait``."""

from __future__ import annotations

from typing import Any

from parley.auth import Claims
from parley.bus import rpcs
from parley.signaling.api import grants
from parley.signaling.api.forwarding import Route, forwarded_methods
from parley.signaling.api.registry import ApiMethod
from parley.signaling.edge import Edge

SERVICE = "livekit.Egress"
FORWARD_TIMEOUT = 15.0
"""More than a StartEgress takes with no worker (3 offer rounds, ``egress.offer_timeout`` each)."""


def room_record(req: Any, claims: Claims) -> None:
    grants.require_room_record(claims)


TABLE: list[Route] = [
    (rpcs.START_EGRESS, room_record),
    (rpcs.START_ROOM_COMPOSITE_EGRESS, room_record),
    (rpcs.START_WEB_EGRESS, room_record),
    (rpcs.START_PARTICIPANT_EGRESS, room_record),
    (rpcs.START_TRACK_COMPOSITE_EGRESS, room_record),
    (rpcs.START_TRACK_EGRESS, room_record),
    (rpcs.UPDATE_LAYOUT, room_record),
    (rpcs.UPDATE_STREAM, room_record),
    (rpcs.LIST_EGRESS, room_record),
    (rpcs.STOP_EGRESS, room_record),
]


def methods(edge: Edge) -> list[ApiMethod]:
    return forwarded_methods(edge.bus, SERVICE, TABLE, FORWARD_TIMEOUT)
