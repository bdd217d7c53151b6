"""``GET /rtc``: validate, join, start the SFU session, then upgrade and relay (livekit-protocol §2)."""

from __future__ import annotations

import uuid

from aiohttp import web
from livekit.protocol import models, rtc

from parley.auth import Claims
from parley.observability import get_logger, meter
from parley.signaling.edge import Edge
from parley.signaling.rtc.connection import ClientConnection
from parley.signaling.rtc.errors import RtcError
from parley.signaling.rtc.join_request import ConnectParams, parse_v0_query, parse_v1
from parley.signaling.rtc.relay import Outbox, Relay
from parley.signaling.rtc.resume import resume_session
from parley.signaling.rtc.session_start import join_room, start_session
from parley.signaling.rtc.validate import authorize, error_response

log = get_logger("parley.signaling.rtc")

WS_PING_SECONDS = 10.0

PATHS = meter("parley.signaling.rtc").create_counter(
    "parley_rtc_connections", description="Client signalling connections accepted, per path (v0 or v1)"
)


RESUMES = meter("parley.signaling.rtc").create_counter(
    "parley_rtc_resumes", description="Client signalling connections resumed (reconnect=1), per path"
)


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _websocket(edge: Edge) -> web.WebSocketResponse:
    return web.WebSocketResponse(
        max_msg_size=edge.config.signaling.max_frame_bytes, heartbeat=WS_PING_SECONDS, autoping=True
    )


async def _refuse_resume(request: web.Request, edge: Edge) -> web.WebSocketResponse:
    """No session resume: the first frame tells the client to rejoin from scratch."""
    ws = _websocket(edge)
    await ws.prepare(request)
    leave = rtc.LeaveRequest(
        reason=models.DisconnectReason.STATE_MISMATCH, action=rtc.LeaveRequest.Action.RECONNECT
    )
    await ws.send_bytes(rtc.SignalResponse(leave=leave).SerializeToString())
    await ws.close()
    return ws


async def handle_rtc(request: web.Request, edge: Edge, relay: Relay) -> web.StreamResponse:
    if not _is_upgrade(request):
        return web.Response(status=404, text="404 page not found")
    try:
        claims = authorize(request, edge)
        params = parse_v0_query(request.query)
    except RtcError as exc:
        return error_response(exc)
    return await connect(request, edge, relay, claims=claims, params=params)


async def handle_rtc_v1(request: web.Request, edge: Edge, relay: Relay) -> web.StreamResponse:
    """``GET /rtc/v1?join_request=…``: one peer connection, the client's first offer in the request."""
    if not _is_upgrade(request):
        return web.Response(status=404, text="404 page not found")
    try:
        claims = authorize(request, edge)
        params = parse_v1(request.query)
    except RtcError as exc:
        return error_response(exc)
    return await connect(request, edge, relay, claims=claims, params=params)


async def connect(
    request: web.Request, edge: Edge, relay: Relay, *, claims: Claims, params: ConnectParams
) -> web.StreamResponse:
    if params.reconnect:
        return await _resume(request, edge, relay, claims=claims, params=params)
    if edge.draining:
        return web.Response(status=503, text="server is draining")
    connection_id = f"CO_{uuid.uuid4().hex[:12]}"
    outbox = relay.register(connection_id)
    try:
        joined = await join_room(edge, claims, params, connection_id)
        await start_session(edge, joined, params, connection_id)
    except RtcError as exc:
        relay.unregister(connection_id)
        log.info("join refused", room=claims.video.room, identity=claims.identity, error=exc.message)
        return error_response(exc)
    PATHS.add(1, {"path": params.path})
    log.info(
        "client connected",
        path=params.path,
        room=joined.room.name,
        participant=joined.participant.sid,
        identity=claims.identity,
        node_id=joined.node_id,
        protocol=params.protocol,
    )
    return await _serve(request, edge, relay, outbox, claims, joined.node_id, joined.participant.sid)


async def _resume(
    request: web.Request, edge: Edge, relay: Relay, *, claims: Claims, params: ConnectParams
) -> web.StreamResponse:
    """``reconnect=1``: the session goes on over this connection, or the client is told to rejoin."""
    connection_id = f"CO_{uuid.uuid4().hex[:12]}"
    outbox = relay.register(connection_id)
    try:
        found = await resume_session(edge, claims, params, connection_id)
    except RtcError as exc:
        relay.unregister(connection_id)
        log.info(
            "resume refused; the client rejoins",
            room=claims.video.room,
            participant=params.participant_sid,
            error=exc.message,
        )
        return await _refuse_resume(request, edge)
    RESUMES.add(1, {"path": params.path})
    log.info(
        "client resumed",
        path=params.path,
        room=claims.video.room,
        participant=params.participant_sid,
        identity=claims.identity,
        node_id=found.node_id,
        reason=params.reconnect_reason,
    )
    return await _serve(request, edge, relay, outbox, claims, found.node_id, params.participant_sid)


async def _serve(
    request: web.Request,
    edge: Edge,
    relay: Relay,
    outbox: Outbox,
    claims: Claims,
    node_id: str,
    participant_sid: str,
) -> web.WebSocketResponse:
    outbox.node_id = node_id
    ws = _websocket(edge)
    await ws.prepare(request)
    connection = ClientConnection(
        ws=ws,
        relay=relay,
        outbox=outbox,
        node_id=node_id,
        room_name=claims.video.room,
        participant_sid=participant_sid,
        claims=claims,
        secret=edge.verifier.secret_for(claims.api_key) or "",
    )
    await connection.run()
    return ws
