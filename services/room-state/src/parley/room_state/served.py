"""The RPCs room-state serves (its registration list; ``Handlers.routes`` binds each one)."""

from __future__ import annotations

from typing import Any

from parley.bus import Rpc, rpcs

SERVES: tuple[Rpc[Any, Any], ...] = (
    rpcs.JOIN_ROOM,
    rpcs.LOCATE_PARTICIPANT,
    rpcs.MOVE_ROOMS,
    rpcs.REPORT,
    rpcs.PARTICIPANT_ACTIVE,
    rpcs.PARTICIPANT_LEFT,
    rpcs.TRACK_PUBLISHED,
    rpcs.TRACK_UNPUBLISHED,
    rpcs.CREATE_ROOM,
    rpcs.LIST_ROOMS,
    rpcs.DELETE_ROOM,
    rpcs.LIST_PARTICIPANTS,
    rpcs.GET_PARTICIPANT,
    rpcs.REMOVE_PARTICIPANT,
    rpcs.MUTE_PUBLISHED_TRACK,
    rpcs.UPDATE_PARTICIPANT,
    rpcs.UPDATE_SUBSCRIPTIONS,
    rpcs.SEND_DATA,
    rpcs.UPDATE_ROOM_METADATA,
    rpcs.PERFORM_RPC,
    rpcs.TAP_TRACK,
)
