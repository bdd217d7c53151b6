"""SDP exchange with aiortc: the server-offered subscriber PC, the client-offered publisher PC,
and client ICE candidates (buffered until the remote description is set)."""

from __future__ import annotations

import json

from aiortc import RTCIceCandidate, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import rtc

from parley.observability import get_logger
from parley.sfu import engine
from parley.sfu.errors import NegotiationError
from parley.sfu.participant import Participant

log = get_logger("parley.sfu.negotiation")

PUBLISHER = int(rtc.SignalTarget.PUBLISHER)
SUBSCRIBER = int(rtc.SignalTarget.SUBSCRIBER)


def count_m_lines(sdp: str, kind: str) -> int:
    """How many ``m=<kind>`` sections an SDP has (logged so SDP growth under churn is visible)."""
    return sum(1 for line in sdp.splitlines() if line.startswith(f"m={kind} "))


async def send_subscriber_offer(p: Participant) -> None:
    """Offer the subscriber PC's current state; if an offer is in flight, offer again after its answer."""
    pc, neg = p.sub_pc, p.sub_negotiation
    if pc is None or p.closed:
        return
    if neg.awaiting_answer:
        neg.needs_offer = True
        return
    neg.needs_offer = False
    offer = await pc.createOffer()
    await pc.setLocalDescription(offer)
    neg.offer_id += 1
    neg.awaiting_answer = True
    description = pc.localDescription
    p.send(
        rtc.SignalResponse(offer=rtc.SessionDescription(type="offer", sdp=description.sdp, id=neg.offer_id))
    )
    log.info(
        "sent subscriber offer",
        participant=p.sid,
        offer_id=neg.offer_id,
        m_audio=count_m_lines(description.sdp, "audio"),
        m_video=count_m_lines(description.sdp, "video"),
    )


async def apply_subscriber_answer(p: Participant, answer: rtc.SessionDescription) -> None:
    pc, neg = p.sub_pc, p.sub_negotiation
    if pc is None or not neg.awaiting_answer:
        log.info("unexpected subscriber answer ignored", participant=p.sid)
        return
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
    except Exception as exc:
        raise NegotiationError(f"cannot apply subscriber answer: {exc}") from exc
    neg.awaiting_answer = False
    await flush_candidates(p, SUBSCRIBER)
    if neg.needs_offer:
        await send_subscriber_offer(p)


async def answer_publisher_offer(pc: RTCPeerConnection, offer: rtc.SessionDescription) -> str:
    """Apply a client offer and return the answer to send (fixed up by the media engine)."""
    if "m=" not in offer.sdp:
        raise NegotiationError("offer has no media sections")
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
    except NegotiationError:
        raise
    except Exception as exc:
        raise NegotiationError(f"cannot answer offer: {type(exc).__name__}: {exc}") from exc
    return engine.prepare_answer(offer.sdp, pc.localDescription.sdp)


def parse_candidate(candidate_init: str) -> RTCIceCandidate | None:
    """JS ``{candidate, sdpMid, sdpMLineIndex, usernameFragment}`` or Rust ``{sdpMid, ...}``.

    None for an empty candidate (end of candidates); ValueError when it cannot be parsed.
    """
    try:
        init = json.loads(candidate_init)
    except ValueError as exc:
        raise ValueError(f"could not decode trickle: {exc}") from exc
    if not isinstance(init, dict):
        raise ValueError("could not decode trickle: not a JSON object")
    text = str(init.get("candidate") or "")
    if not text:
        return None
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    try:
        candidate = candidate_from_sdp(text)
    except (ValueError, IndexError, KeyError, AssertionError) as exc:  # aiortc asserts 8+ fields
        raise ValueError(f"invalid ICE candidate: {type(exc).__name__}: {exc}") from exc
    candidate.sdpMid = init.get("sdpMid")
    index = init.get("sdpMLineIndex")
    candidate.sdpMLineIndex = index if isinstance(index, int) else None
    return candidate


async def add_trickle(p: Participant, trickle: rtc.TrickleRequest) -> None:
    """Add (or buffer) a client candidate; raises ValueError for one that cannot be parsed."""
    candidate = parse_candidate(trickle.candidateInit)
    if candidate is None:
        return
    target = PUBLISHER if p.single_pc else int(trickle.target)
    pc = p.sub_pc if target == SUBSCRIBER else p.pub_pc
    if pc is None or pc.remoteDescription is None:
        p.candidates.setdefault(target, []).append(candidate)
        return
    await _add(pc, candidate)


async def flush_candidates(p: Participant, target: int) -> None:
    pc = p.sub_pc if target == SUBSCRIBER else p.pub_pc
    pending, p.candidates[target] = p.candidates.get(target, []), []
    if pc is None:
        return
    for candidate in pending:
        await _add(pc, candidate)


async def _add(pc: RTCPeerConnection, candidate: RTCIceCandidate) -> None:
    try:
        await pc.addIceCandidate(candidate)
    except Exception as exc:
        log.info("remote candidate ignored", error=str(exc))
