"""/rtc/v1: one peer connection per participant, always offered by the client.

The client's offers carry its own sending m-lines, its data channels and recvonly m-lines (3 audio +
3 video in the first offer). The server never offers: every answer puts the participant's wanted
subscriptions onto free recvonly m-lines (``DownTrack.attach(..., transceiver=...)``) and names them
in ``mid_to_track_id``. When something changes between client offers (a new subscription, an
unsubscription), the server asks for a new offer with ``media_sections_requirement`` carrying the
number of m-lines still missing (0/0 when the free ones suffice), as LiveKit does
(``pkg/rtc/transport.go`` sendUnmatchedMediaRequirement).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.sdp import SessionDescription
from livekit.protocol import models, rtc

from parley.observability import get_logger
from parley.sfu import dynacast, engine, negotiation, publish, subscribed_track
from parley.sfu.errors import NegotiationError
from parley.sfu.participant import Participant, PublishedTrack

if TYPE_CHECKING:
    from parley.sfu.room import Room

log = get_logger("parley.sfu.single_pc")

REQUEST_RETRY_S = 5.0
"""A request the client has not answered with an offer for this long may be sent again."""
MAX_UNSATISFIED = 3
"""Requests in a row that brought no usable m-line before the server stops asking (until the next
client offer that does)."""

_KIND = {models.TrackType.AUDIO: "audio", models.TrackType.VIDEO: "video"}


def kind_of(track: PublishedTrack) -> str:
    return _KIND.get(track.info.type, "audio")


async def handle_offer(room: Room, p: Participant, offer: rtc.SessionDescription) -> None:
    """A client offer (the one in the join request, or any later one): answer it."""
    if p.closed:
        return
    try:
        await answer_offer(room, p, offer)
    except NegotiationError as exc:
        pc = p.pub_pc
        # aiortc closes a PC whose client sent DTLS close_notify by itself; its public states lag
        # (a setRemoteDescription in flight even sets signalingState back from "closed"), its
        # closing flag does not (set first, never cleared: it covers a closed PC too)
        if pc is not None and engine.pc_closing(pc):
            # the client closed its side (DTLS close_notify) while leaving: its WebSocket close ends it
            log.info("offer on a closed peer connection ignored", participant=p.sid)
            return
        log.warning("negotiation failed; disconnecting participant", participant=p.sid, error=str(exc))
        await room.remove(p, models.DisconnectReason.STATE_MISMATCH)


async def answer_offer(room: Room, p: Participant, offer: rtc.SessionDescription) -> None:
    if "m=" not in offer.sdp:
        raise NegotiationError("offer has no media sections")
    pc = room.ensure_publisher_pc(p)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
    except Exception as exc:
        raise NegotiationError(f"cannot apply offer: {type(exc).__name__}: {exc}") from exc
    note_offer(p, offer.sdp)
    attached = attach_pending(room, p, pc)
    # m-lines retired so far go inactive in this answer; one retired later waits for the next answer
    answered_inactive = set(p.v1.retired_mids)
    try:
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:
        raise NegotiationError(f"cannot answer offer: {type(exc).__name__}: {exc}") from exc
    answer_sdp = engine.prepare_answer(offer.sdp, pc.localDescription.sdp)
    answer = rtc.SessionDescription(
        type="answer", sdp=answer_sdp, id=offer.id, mid_to_track_id=mid_to_track_id(p)
    )
    p.send(rtc.SignalResponse(answer=answer))
    state = p.v1
    answered_inactive_once(p, answered_inactive)
    log.info(
        "answered offer",
        participant=p.sid,
        m_audio=negotiation.count_m_lines(answer_sdp, "audio"),
        m_video=negotiation.count_m_lines(answer_sdp, "video"),
        inactive=",".join(sorted(answered_inactive)),
    )
    state.answered = True
    state.awaiting_offer = False
    for pub, track in attached:
        if not track.subscribed_once:
            track.subscribed_once = True
            pub.send(rtc.SignalResponse(track_subscribed=rtc.TrackSubscribed(track_sid=track.info.sid)))
    await negotiation.flush_candidates(p, negotiation.PUBLISHER)
    publish.bind_offer(room, p, offer.sdp)
    if state.pending:
        state.unsatisfied = 0 if attached else state.unsatisfied + 1
        state.needs_offer = True
    else:
        state.unsatisfied = 0
        state.needs_offer = False


def note_offer(p: Participant, offer_sdp: str) -> None:
    """Remember which m-lines the client wants to receive on, and which ever carried its media."""
    state = p.v1
    state.receive_mids = {}
    for media in SessionDescription.parse(offer_sdp).media:
        if media.kind not in ("audio", "video"):
            continue
        mid = media.rtp.muxId
        if media.direction in ("sendonly", "sendrecv"):
            state.publish_mids.add(mid)
        elif media.direction == "recvonly" and media.port != 0:
            state.receive_mids[mid] = media.kind


def free_mids(p: Participant) -> dict[str, list[str]]:
    """Recvonly m-lines of the latest offer that carry no DownTrack, never carried the client's own
    media and are not waiting for their inactive answer, per kind, in offer order.

    An m-line whose DownTrack closed (``retired_mids``) is answered inactive once, then reused: the
    media engine continues the sender's stream (same SSRC, continuous seq/ts) on the new DownTrack."""
    state = p.v1
    used = {down.transceiver.mid for down in p.downtracks.values()}
    free: dict[str, list[str]] = {"audio": [], "video": []}
    for mid, kind in state.receive_mids.items():
        if mid not in used and mid not in state.publish_mids and mid not in state.retired_mids:
            free[kind].append(mid)
    return free


def missing(p: Participant) -> tuple[int, int]:
    """(audio, video) m-lines the pending subscriptions lack beyond the free ones."""
    free = free_mids(p)
    wanted = {"audio": 0, "video": 0}
    for _, track in p.v1.pending.values():
        wanted[kind_of(track)] += 1
    return max(0, wanted["audio"] - len(free["audio"])), max(0, wanted["video"] - len(free["video"]))


def attach_pending(
    room: Room, p: Participant, pc: RTCPeerConnection
) -> list[tuple[Participant, PublishedTrack]]:
    """Between setRemoteDescription and createAnswer: pending subscriptions onto free m-lines."""
    state = p.v1
    transceivers: dict[str, RTCRtpTransceiver] = {t.mid: t for t in pc.getTransceivers() if t.mid}
    free = free_mids(p)
    attached: list[tuple[Participant, PublishedTrack]] = []
    for sid, (pub, track) in list(state.pending.items()):
        if pub.closed or track.up is None or pub.published.get(sid) is not track:
            del state.pending[sid]
            continue
        kind = kind_of(track)
        transceiver = None
        while free[kind] and transceiver is None:
            candidate = transceivers.get(free[kind].pop(0))
            if candidate is not None and candidate.kind == kind:
                transceiver = candidate
        if transceiver is None:
            continue
        try:
            down = engine.DownTrack.attach(
                pc,
                track.up,
                stream_id=f"{pub.sid}|{sid}",
                track_id=sid,
                context=room.media,
                transceiver=transceiver,
                screen_share=track.info.source == models.TrackSource.SCREEN_SHARE,
            )
            subscribed_track.prepare(room.name, p, pub, track, down)
        except Exception:
            log.exception("cannot attach downtrack", participant=p.sid, track=sid)
            del state.pending[sid]
            continue
        del state.pending[sid]
        p.downtracks[sid] = down
        dynacast.refresh_sid(room, sid)
        attached.append((pub, track))
        log.info("subscribed on client m-line", participant=p.sid, track=sid, mid=transceiver.mid)
    return attached


def mid_to_track_id(p: Participant) -> dict[str, str]:
    return {down.transceiver.mid: sid for sid, down in p.downtracks.items() if down.transceiver.mid}


def detach(p: Participant, track_sid: str) -> None:
    """Stop a subscription; its m-line goes inactive in the next answer."""
    if p.v1.pending.pop(track_sid, None) is not None:
        return
    down = p.downtracks.pop(track_sid, None)
    if down is None:
        return
    try:
        down.close()
    except Exception:
        log.exception("downtrack close failed", participant=p.sid, track=track_sid)
    down.transceiver.direction = "recvonly"  # inactive in the next answer
    if down.transceiver.mid is not None:
        p.v1.retired_mids.add(down.transceiver.mid)
    p.v1.needs_offer = True


def answered_inactive_once(p: Participant, mids: set[str]) -> None:
    """``mids`` went out inactive in the answer just sent: free from the client's next offer on.

    libwebrtc fires ontrack only when an m-line starts receiving, so an m-line never goes from
    sendonly (msid A) to sendonly (msid B) in one answer: it is answered inactive once in between."""
    p.v1.retired_mids -= mids


def wants_offer(p: Participant) -> bool:
    state = p.v1
    return (
        p.single_pc
        and not p.closed
        and state.needs_offer
        and state.answered
        and (not state.awaiting_offer or time.monotonic() - state.asked_at > REQUEST_RETRY_S)
        and state.unsatisfied < MAX_UNSATISFIED
    )


def request_offer(p: Participant) -> None:
    """Ask the client for a new offer, with the m-lines it must add (LiveKit: numbers may be 0)."""
    audios, videos = missing(p)
    requirement = rtc.MediaSectionsRequirement(num_audios=audios, num_videos=videos)
    p.send(rtc.SignalResponse(media_sections_requirement=requirement))
    p.v1.needs_offer = False
    p.v1.awaiting_offer = True
    p.v1.asked_at = time.monotonic()
    log.info("asked for an offer", participant=p.sid, audios=audios, videos=videos)
