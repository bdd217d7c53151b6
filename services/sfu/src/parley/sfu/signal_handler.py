"""Client frames (SignalRequest) for one participant, run inside the room's actor."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from livekit.protocol import models, rtc

from parley.observability import get_logger
from parley.sfu import metadata, negotiation, permissions, publish, single_pc, subscriptions, sync_state
from parley.sfu.errors import NegotiationError
from parley.sfu.participant import Participant

if TYPE_CHECKING:
    from parley.sfu.room import Room

log = get_logger("parley.sfu.signal")

IGNORED = {
    "update_layers",
    "simulate",
    "update_audio_track",
    "update_video_track",
    "update_data_subscription",
}


async def handle(room: Room, p: Participant, request: rtc.SignalRequest) -> None:
    kind = request.WhichOneof("message")
    if p.closed or kind is None:
        return
    if kind == "offer":
        if p.single_pc:
            await single_pc.handle_offer(room, p, request.offer)
        else:
            await _publisher_offer(room, p, request.offer)
    elif kind == "answer":
        try:
            await negotiation.apply_subscriber_answer(p, request.answer)
        except NegotiationError as exc:
            await _negotiation_failed(room, p, exc)
    elif kind == "trickle":
        await _trickle(room, p, request.trickle)
    elif kind == "add_track":
        publish.add_track(p, request.add_track)
    elif kind == "mute":
        publish.set_muted(room, p, request.mute.sid, request.mute.muted)
    elif kind == "subscription":
        sids = subscriptions.track_sids_of(request.subscription)
        subscriptions.update(room, p, sids, request.subscription.subscribe)
    elif kind == "subscription_permission":
        permissions.update(room, p, request.subscription_permission)
    elif kind == "sync_state":
        sync_state.apply(room, p, request.sync_state)
    elif kind == "track_setting":
        subscriptions.update_settings(room, p, request.track_setting)
    elif kind == "leave":
        await room.remove(p, models.DisconnectReason.CLIENT_INITIATED, send_leave=False)
    elif kind == "update_metadata":
        metadata.update_own(room, p, request.update_metadata)
    elif kind == "ping":
        p.send(rtc.SignalResponse(pong=int(time.time() * 1000)))
    elif kind == "ping_req":
        pong = rtc.Pong(last_ping_timestamp=request.ping_req.timestamp, timestamp=int(time.time() * 1000))
        p.send(rtc.SignalResponse(pong_resp=pong))
    elif kind in IGNORED:
        return
    else:
        log.info("unsupported request ignored", kind=kind, participant=p.sid)


async def _trickle(room: Room, p: Participant, trickle: rtc.TrickleRequest) -> None:
    """A candidate that cannot be parsed gets request_response UNCLASSIFIED_ERROR (as LiveKit's
    HandleICETrickle); the session carries on."""
    try:
        await negotiation.add_trickle(p, trickle)
    except ValueError as exc:
        log.info("bad trickle refused", room=room.name, participant=p.sid, error=str(exc))
        response = rtc.RequestResponse(
            reason=rtc.RequestResponse.Reason.UNCLASSIFIED_ERROR, message=str(exc), trickle=trickle
        )
        p.send(rtc.SignalResponse(request_response=response))


async def _publisher_offer(room: Room, p: Participant, offer: rtc.SessionDescription) -> None:
    pc = room.ensure_publisher_pc(p)
    try:
        answer_sdp = await negotiation.answer_publisher_offer(pc, offer)
    except NegotiationError as exc:
        await _negotiation_failed(room, p, exc)
        return
    p.send(rtc.SignalResponse(answer=rtc.SessionDescription(type="answer", sdp=answer_sdp, id=offer.id)))
    await negotiation.flush_candidates(p, negotiation.PUBLISHER)
    publish.bind_offer(room, p, offer.sdp)


async def _negotiation_failed(room: Room, p: Participant, exc: Exception) -> None:
    """A broken SDP ends only this participant's session, with a leave it can read."""
    log.warning("negotiation failed; disconnecting participant", participant=p.sid, error=str(exc))
    await room.remove(p, models.DisconnectReason.STATE_MISMATCH)
