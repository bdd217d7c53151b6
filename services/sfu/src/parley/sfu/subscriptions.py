"""Who receives which track: auto-subscribe, explicit (un)subscriptions, permissions.

``reconcile`` makes a subscriber's DownTracks match what it should receive; callers then let
the room renegotiate every subscriber PC that changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from aiortc import RTCPeerConnection, RTCRtpTransceiver
from livekit.protocol import models, rtc

from parley.observability import get_logger
from parley.sfu import dynacast, engine, permissions, single_pc, subscribed_track, track_settings
from parley.sfu.participant import Participant, PublishedTrack

if TYPE_CHECKING:
    from parley.sfu.room import Room

log = get_logger("parley.sfu.subscriptions")

# v0: the stream ids (``<participant>|<track>``) each subscriber m-line has ever carried. The Rust SDK
# (livekit-ffi >= 0.12.64, dual PC) dispatches a remote track once per (mid, stream id) for the whole
# session and drops later ``ontrack`` events for that pair, so a track subscribed again must not go
# back on an m-line that already carried it (libwebrtc does fire ontrack again; the SDK ignores it).
_carried: WeakKeyDictionary[RTCRtpTransceiver, set[str]] = WeakKeyDictionary()


def wants(sub: Participant, pub: Participant, track_sid: str) -> bool:
    # v1 subscriptions wait for a client offer anyway, so they may start before the PC connects
    # (the first answer then carries the tracks already in the room)
    if sub is pub or sub.closed or pub.closed or not (sub.active or sub.single_pc):
        return False
    if not sub.permission.can_subscribe:
        return False
    if track_sid in sub.unwanted:
        return False
    return (sub.auto_subscribe or track_sid in sub.wanted) and permissions.check(sub, pub, track_sid)


def subscribe(room: Room, sub: Participant, pub: Participant, track: PublishedTrack) -> bool:
    sid = track.info.sid
    if sid in sub.downtracks or track.up is None:
        return False
    if sub.single_pc:
        if sid in sub.v1.pending:
            return False
        sub.v1.pending[sid] = (pub, track)
        sub.v1.needs_offer = True
        return True
    pc = room.ensure_subscriber_pc(sub)
    stream_id = f"{pub.sid}|{sid}"
    transceiver = reusable_transceiver(sub, pc, track.up.kind, stream_id)
    try:
        down = engine.DownTrack.attach(
            pc,
            track.up,
            stream_id=stream_id,
            track_id=sid,
            context=room.media,
            transceiver=transceiver,
            screen_share=track.info.source == models.TrackSource.SCREEN_SHARE,
        )
        subscribed_track.prepare(room.name, sub, pub, track, down)
    except Exception:
        log.exception("cannot attach downtrack", room=room.name, participant=sub.sid, track=sid)
        return False
    _carried.setdefault(down.transceiver, set()).add(stream_id)
    sub.downtracks[sid] = down
    dynacast.refresh(room, pub, sid)
    sub.sub_negotiation.needs_offer = True
    if transceiver is not None:
        log.info(
            "subscribed on a freed m-line",
            room=room.name,
            participant=sub.sid,
            track=sid,
            mid=transceiver.mid,
        )
    if not track.subscribed_once:
        track.subscribed_once = True
        pub.send(rtc.SignalResponse(track_subscribed=rtc.TrackSubscribed(track_sid=sid)))
    return True


def find_track(room: Room, track_sid: str) -> tuple[Participant, PublishedTrack] | None:
    for pub in room.participants.values():
        track = pub.published.get(track_sid)
        if track is not None:
            return pub, track
    return None


def update_settings(room: Room, sub: Participant, request: rtc.UpdateTrackSettings) -> None:
    """``track_setting`` (adaptive stream, ``set_video_quality``): remember and apply."""
    for sid in track_settings.remember(sub.track_settings, request):
        found = find_track(room, sid)
        down = sub.downtracks.get(sid)
        if down is not None:
            limit = track_settings.apply(down, found[1].info if found else None, sub.track_settings[sid])
            dynacast.refresh_sid(room, sid)
            log.info("track settings", room=room.name, participant=sub.sid, track=sid, max_spatial=limit)


def reusable_transceiver(
    sub: Participant, pc: RTCPeerConnection, kind: str, stream_id: str | None = None
) -> RTCRtpTransceiver | None:
    """v0: an m-line of the subscriber PC freed by an unsubscription and already negotiated inactive
    (libwebrtc fires ontrack only when an m-line starts receiving, so it must have stopped first) that
    never carried ``stream_id`` (see ``_carried``: the Rust SDK would not surface the track again)."""
    live = {id(down.transceiver) for down in sub.downtracks.values()}
    for t in pc.getTransceivers():
        if (
            t.kind == kind
            and t.mid is not None
            and not t.stopped
            and t.direction == "inactive"
            and t.currentDirection == "inactive"
            and id(t) not in live
            and (stream_id is None or stream_id not in _carried.get(t, ()))
        ):
            return t
    return None


def unsubscribe(room: Room, sub: Participant, track_sid: str) -> None:
    if sub.single_pc:
        single_pc.detach(sub, track_sid)
        dynacast.refresh_sid(room, track_sid)
        return
    down = sub.downtracks.pop(track_sid, None)
    if down is None:
        return
    try:
        down.close()
    except Exception:
        log.exception("downtrack close failed", participant=sub.sid, track=track_sid)
    # the next offer makes the m-line inactive; once answered so, it can carry another subscription
    down.transceiver.direction = "inactive"
    sub.sub_negotiation.needs_offer = True
    dynacast.refresh_sid(room, track_sid)


def reconcile(room: Room, sub: Participant) -> None:
    """Subscribe to every wanted track and drop every unwanted one."""
    present: set[str] = set()
    for pub in list(room.participants.values()):
        for sid, track in pub.published.items():
            present.add(sid)
            if wants(sub, pub, sid):
                subscribe(room, sub, pub, track)
            elif sid in sub.downtracks or sid in sub.v1.pending:
                unsubscribe(room, sub, sid)
    for sid in [s for s in (*sub.downtracks, *sub.v1.pending) if s not in present]:
        unsubscribe(room, sub, sid)


def reconcile_all(room: Room) -> None:
    for sub in list(room.participants.values()):
        reconcile(room, sub)


def update(room: Room, sub: Participant, track_sids: Iterable[str], subscribe_to: bool) -> None:
    """UpdateSubscription (signal) or UpdateSubscriptions (RoomService)."""
    for sid in track_sids:
        if subscribe_to:
            sub.wanted.add(sid)
            sub.unwanted.discard(sid)
        else:
            sub.wanted.discard(sid)
            sub.unwanted.add(sid)
    reconcile(room, sub)


def track_sids_of(request: rtc.UpdateSubscription) -> list[str]:
    sids = list(request.track_sids)
    for pt in request.participant_tracks:
        sids.extend(pt.track_sids)
    return sids
