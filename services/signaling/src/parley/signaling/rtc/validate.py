"""Checks done before the upgrade, and the /validate endpoints the SDKs call after a failed one."""

from __future__ import annotations

from aiohttp import web
from livekit.protocol import room as room_pb

from parley.auth import AuthError, Claims, bearer_token
from parley.bus import BusError, rpcs
from parley.signaling.edge import Edge
from parley.signaling.rtc.errors import BadRequest, RoomNotFound, RtcError, Unauthorized
from parley.signaling.rtc.limits import join_breach


def token_of(request: web.Request) -> str | None:
    """The token from ``access_token`` (JS) or ``Authorization: Bearer`` (Rust/Python)."""
    token = request.query.get("access_token")
    if token:
        return token
    return bearer_token(request.headers.get("Authorization"))


def authorize(request: web.Request, edge: Edge) -> Claims:
    """Verify the token and the join rules (livekit ValidateConnectRequest)."""
    try:
        claims = edge.verifier.verify(token_of(request))
    except AuthError as exc:
        raise Unauthorized(str(exc)) from exc
    if not claims.video.flag("room_join"):
        raise Unauthorized("permissions denied")
    if not claims.identity:
        raise BadRequest("participant identity cannot be empty")
    if not claims.video.room:
        raise BadRequest("room name cannot be empty")
    breach = join_breach(claims)
    if breach is not None:
        raise BadRequest(breach)
    return claims


async def room_exists(edge: Edge, room_name: str) -> bool:
    """Only asked when rooms are not auto-created."""
    try:
        response = await edge.bus.call(
            rpcs.LIST_ROOMS, room_pb.ListRoomsRequest(names=[room_name]), timeout=3.0
        )
    except BusError:
        return True  # cannot tell: let the join decide
    return any(r.name == room_name for r in response.rooms)


def error_response(exc: RtcError) -> web.Response:
    return web.Response(status=exc.status, text=exc.message)


async def handle_validate(request: web.Request, edge: Edge) -> web.Response:
    """``GET /rtc/validate``: 200 success, or the status and reason of the refusal."""
    try:
        claims = authorize(request, edge)
        if not edge.config.room.auto_create and not await room_exists(edge, claims.video.room):
            raise RoomNotFound()
    except RtcError as exc:
        return error_response(exc)
    return web.Response(text="success")
