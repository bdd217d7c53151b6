"""Simulcast: the answer to a Chrome-style q/h/f offer, and layer selection fed with rid-tagged RTP."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCSessionDescription, sdp
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import RtpPacket

from parley.config import RtcConfig
from parley.sfu.media import (
    DownTrack,
    MediaContext,
    UpTrack,
    configure,
    new_peer_connection,
    prepare_answer,
)
from parley.sfu.media.aiortc_internals import URI_MID, URI_RID
from parley.sfu.media.simulcast_sdp import offered_simulcast_layers

pytestmark = pytest.mark.unit

OFFER = (Path(__file__).parent / "fixtures" / "chrome_simulcast_offer.sdp").read_text().replace("\n", "\r\n")


@pytest.fixture(autouse=True)
def _configured() -> None:
    configure(RtcConfig(use_loopback=True, port_range_start=41000, port_range_end=41999))


def _section(sdp: str, mid: str) -> list[str]:
    sections: list[list[str]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([])
        if sections:
            sections[-1].append(line)
    return next(s for s in sections if f"a=mid:{mid}" in s)


async def test_answer_to_a_chrome_simulcast_offer_accepts_every_layer() -> None:
    assert offered_simulcast_layers(OFFER) == {"1": ["q", "h", "f"]}
    pc = new_peer_connection()
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=OFFER, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        raw = pc.localDescription.sdp
        assert "a=simulcast" not in raw  # what aiortc alone does
        answer = prepare_answer(OFFER, raw)
    finally:
        await pc.close()
    video = _section(answer, "1")
    assert "a=recvonly" in video
    assert [x for x in video if x.startswith("a=rid:")] == ["a=rid:q recv", "a=rid:h recv", "a=rid:f recv"]
    assert "a=simulcast:recv q;h;f" in video
    # the RID header extensions are negotiated with the offer's ids (libwebrtc requires it)
    assert f"a=extmap:10 {URI_RID}" in video
    assert "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id" in video
    assert not any("red/" in x or "ulpfec" in x for x in video)  # never RED
    assert any("VP8/90000" in x for x in video)
    audio = _section(answer, "0")
    assert not any(x.startswith(("a=rid", "a=simulcast")) for x in audio)
    assert answer.endswith("\r\n") and "\r\n\r\n" not in answer
    parsed = sdp.SessionDescription.parse(answer)  # still valid SDP for aiortc's parser
    assert [m.kind for m in parsed.media] == ["audio", "video", "application"]


def test_prepare_answer_leaves_answers_without_simulcast_alone() -> None:
    plain = OFFER.replace("a=simulcast:send q;h;f\r\n", "")
    assert (
        prepare_answer(plain, "v=0\r\nm=video 9 X 96\r\na=mid:1\r\n")
        == "v=0\r\nm=video 9 X 96\r\na=mid:1\r\n"
    )


def test_python_sdk_h_q_order_and_paused_layers() -> None:
    offer = OFFER.replace("a=rid:f send\r\n", "").replace("a=simulcast:send q;h;f", "a=simulcast:send h;~q")
    answer = prepare_answer(offer, "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=recvonly\r\n")
    assert "a=rid:h recv\r\na=rid:q recv\r\na=simulcast:recv h;q\r\n" in answer


# ---- layer selection, fed with RTP packets carrying the rid extension


VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
EXTS = [
    RTCRtpHeaderExtensionParameters(id=4, uri=URI_MID),
    RTCRtpHeaderExtensionParameters(id=10, uri=URI_RID),
]
KEY = (
    bytes([0x90, 0x80, 0x01, 0x00, 0x00, 0x00])
    + b"\x9d\x01\x2a"
    + (640).to_bytes(2, "little")
    + (360).to_bytes(2, "little")
)
DELTA = bytes([0x90, 0x80, 0x01, 0x01, 0, 0, 0])


class Harness:
    def __init__(self, up: UpTrack, down: DownTrack) -> None:
        self.up, self.down = up, down
        self.out: list[tuple[int, int, int]] = []  # (seq, ts, source ssrc)
        self.raw: list[bytes] = []
        self.seq = {"q": 100, "h": 5000, "f": 30000}
        self.ssrc = {"q": 1111, "h": 2222, "f": 3333}
        self.ts = {"q": 10, "h": 1_000_000, "f": 7_000_000}
        self.last_ssrc = 0
        down._transmit = self._capture  # type: ignore[method-assign]

    def _capture(self, data: bytes) -> bool:
        if 200 <= data[1] <= 206:
            return True
        self.out.append((int.from_bytes(data[2:4], "big"), int.from_bytes(data[4:8], "big"), self.last_ssrc))
        self.raw.append(data)
        return True

    def feed(self, rid: str, key: bool = False, payload: bytes | None = None) -> None:
        packet = RtpPacket(
            payload_type=96, sequence_number=self.seq[rid], timestamp=self.ts[rid], ssrc=self.ssrc[rid]
        )
        packet.payload = payload if payload is not None else KEY if key else DELTA
        packet.extensions.rtp_stream_id = rid
        packet.extensions.mid = "0"
        self.seq[rid] = (self.seq[rid] + 1) & 0xFFFF
        self.ts[rid] += 3000
        self.last_ssrc = self.ssrc[rid]
        self.up._on_rtp(packet, 0)

    def sources(self) -> list[int]:
        return [s for _, _, s in self.out]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    pub_side = new_peer_connection()
    sub_side = new_peer_connection()
    transceiver = pub_side.addTransceiver("video", direction="recvonly")
    receiver: Any = transceiver.receiver
    context = MediaContext()
    up = UpTrack(receiver, kind="video", mid="0", track_sid="TR_v", context=context)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8], headerExtensions=EXTS, muxId="0"))
    down = DownTrack.attach(sub_side, up, stream_id="PA_p|TR_v", track_id="TR_v", context=context)
    sender: Any = down.transceiver.sender
    await sender.send(RTCRtpSendParameters(codecs=[VP8], headerExtensions=EXTS[:1], muxId="3"))
    try:
        yield Harness(up, down)
    finally:
        down.close()
        up.close()
        await pub_side.close()
        await sub_side.close()


async def test_forwards_the_best_layer_and_switches_only_on_keyframes(harness: Harness) -> None:
    h = harness
    for _ in range(3):
        h.feed("q")  # no keyframe yet: nothing forwarded
    assert h.out == []
    h.feed("q", key=True)
    for _ in range(3):
        h.feed("q")
    assert h.sources() == [1111] * 4 and h.down.current_layer == "q"

    h.feed("h")  # a better layer appears, but mid-frame: keep q until h's keyframe
    h.feed("q")
    assert h.sources()[-1] == 1111
    h.feed("h", key=True)
    h.feed("q")
    h.feed("h")
    assert h.sources()[-2:] == [2222, 2222] and h.down.current_layer == "h"

    h.feed("f")
    h.feed("f", key=True)
    h.feed("h")
    h.feed("f")
    assert h.down.current_layer == "f" and h.sources()[-2:] == [3333, 3333]
    assert h.up.layers == ["q", "h", "f"]
    assert (h.up.width, h.up.height) == (640, 360)

    # output: one SSRC, contiguous sequence numbers, timestamps never going back across switches
    seqs = [s for s, _, _ in h.out]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    tss = [t for _, t, _ in h.out]
    assert all(0 <= (b - a) & 0xFFFFFFFF < 0x80000000 for a, b in itertools.pairwise(tss))


async def test_a_new_top_layer_gets_a_keyframe_request_and_is_forwarded_from_its_keyframe(
    harness: Harness,
) -> None:
    h = harness
    requested: list[str | None] = []
    original = h.up.request_keyframe

    def record(layer: Any, now: float | None = None) -> bool:
        requested.append(layer.rid if layer is not None else None)
        return original(layer, now)

    h.up.request_keyframe = record  # type: ignore[method-assign]
    h.feed("q", key=True)
    h.feed("q")
    assert h.down.current_layer == "q"
    requested.clear()
    h.feed("f")  # the top layer starts mid-frame (its keyframe was lost): ask the publisher for one
    h.feed("q")
    assert "f" in requested and h.down.current_layer == "q"
    h.feed("f", key=True)
    assert h.down.current_layer == "f" and h.sources()[-1] == 3333


async def test_falls_back_when_the_top_layer_stops(harness: Harness) -> None:
    h = harness
    h.feed("h", key=True)
    h.feed("f", key=True)
    h.feed("f")
    assert h.down.current_layer == "f"
    layer_f = next(x for x in h.up._layers if x.rid == "f")
    layer_f.last_seen -= 5  # f went quiet
    h.down._forwarder._selector._target_at -= 5  # type: ignore[attr-defined]  # re-target now
    h.feed("h")  # not a keyframe: wait for one
    assert h.down.current_layer == "f"
    h.feed("h", key=True)
    assert h.down.current_layer == "h"
    assert h.sources()[-1] == 2222


async def test_paused_down_track_forwards_nothing_and_resumes_on_a_keyframe(harness: Harness) -> None:
    h = harness
    h.feed("q", key=True)
    h.down.paused = True
    h.feed("q", key=True)
    assert len(h.out) == 1
    h.down.paused = False
    h.feed("q")
    assert len(h.out) == 1
    h.feed("q", key=True)
    assert len(h.out) == 2
    assert (h.out[1][0] - h.out[0][0]) & 0xFFFF == 1


async def test_requested_layer_switches_down_and_up_on_keyframes(harness: Harness) -> None:
    """UpdateTrackSettings: HIGH, LOW, MEDIUM, HIGH in turn; each switch waits for the layer's keyframe."""
    h = harness
    for rid in ("q", "h", "f"):
        h.feed(rid, key=True)
    h.feed("f")
    assert h.down.current_layer == "f"
    for limit, rid in ((0, "q"), (1, "h"), (2, "f")):
        h.down.set_requested(limit)
        for other in ("q", "h", "f"):
            h.feed(other)  # no keyframe yet: keep the previous layer
        assert h.down.current_layer != rid
        h.feed(rid, key=True)
        h.feed(rid)
        assert h.down.current_layer == rid and h.sources()[-2:] == [h.ssrc[rid]] * 2
    seqs = [q for q, _, _ in h.out]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


async def test_a_request_below_every_layer_gets_the_lowest(harness: Harness) -> None:
    h = harness
    h.feed("h", key=True)
    h.feed("f", key=True)
    h.down.set_requested(0)
    h.feed("f")
    h.feed("h", key=True)
    assert h.down.current_layer == "h"


async def test_disabled_and_allocator_paused_tracks_forward_nothing(harness: Harness) -> None:
    from parley.sfu.media.interfaces import NO_LAYER

    h = harness
    states: list[tuple[str, bool]] = []
    allocations: list[tuple[str, int]] = []
    h.down.on_stream_state = lambda sid, paused: states.append((sid, paused))
    h.down.on_allocation = lambda sid, layer, _estimate: allocations.append((sid, layer))
    h.feed("q", key=True)
    h.feed("f", key=True)
    sent = len(h.out)
    h.down.set_requested(NO_LAYER)  # the subscriber disabled it (hidden video element)
    assert h.down.requested_max_spatial == NO_LAYER
    h.feed("f", key=True)
    assert len(h.out) == sent and states == []  # a subscriber's own choice is no stream-state change
    h.down.set_requested(2)
    h.down.set_allocation(NO_LAYER)  # the link cannot carry even the lowest layer
    h.feed("f", key=True)
    h.feed("q", key=True)
    assert len(h.out) == sent and states == [("TR_v", True)]
    h.down.set_allocation(0)
    h.feed("q", key=True)
    assert h.down.current_layer == "q" and states == [("TR_v", True), ("TR_v", False)]
    h.down.set_allocation(0)  # no change, not told
    h.down.set_allocation(1)  # a layer change that is no pause or resume
    assert allocations == [("TR_v", NO_LAYER), ("TR_v", 0), ("TR_v", 1)] and len(states) == 2
    assert [b.spatial for b in h.down.layer_bitrates(time.monotonic())] == [0, 2]  # what it may choose


# ---- payload types of answers to Chrome's /rtc/v1 offers (join, then the re-offer after publishing)

V1_OFFERS = [
    (Path(__file__).parent / "fixtures" / name).read_text().replace("\r\n", "\n").replace("\n", "\r\n")
    for name in ("chrome_v1_join_offer.sdp", "chrome_v1_republish_offer.sdp")
]


def _rtpmaps(sdp_text: str) -> list[dict[int, tuple[str, str]]]:
    """Per m-line: PT -> (rtpmap, fmtp) exactly as written; fails on a PT mapped twice in one m-line."""
    out: list[dict[int, tuple[str, str]]] = []
    fmtps: dict[int, str] = {}
    for line in sdp_text.splitlines():
        if line.startswith("m="):
            out.append({})
            fmtps = {}
        elif line.startswith("a=rtpmap:"):
            pt, codec = line[len("a=rtpmap:") :].split(" ", 1)
            assert int(pt) not in out[-1], f"PT {pt} mapped twice in one m-line"
            out[-1][int(pt)] = (codec.lower(), "")
        elif line.startswith("a=fmtp:"):
            pt, params = line[len("a=fmtp:") :].split(" ", 1)
            fmtps[int(pt)] = params
            if int(pt) in out[-1]:
                out[-1][int(pt)] = (out[-1][int(pt)][0], params)
    return out


async def test_answers_to_chrome_v1_offers_use_the_offers_payload_types() -> None:
    """Chrome rejects an answer that maps one PT to two codecs (it did when VP9/AV1 sat at 35..63)."""
    pc = new_peer_connection()
    try:
        for offer in V1_OFFERS:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            answer = prepare_answer(offer, pc.localDescription.sdp)
            offered, answered = _rtpmaps(offer), _rtpmaps(answer)
            bundle: dict[int, str] = {}
            for m_offer, m_answer in zip(offered, answered, strict=True):
                for pt, (codec, params) in m_answer.items():
                    assert pt in m_offer and m_offer[pt][0] == codec, (pt, codec)
                    assert bundle.setdefault(pt, codec) == codec, f"PT {pt} differs across bundled m-lines"
                    if codec.startswith("vp9/"):
                        assert "profile-id=0" in m_offer[pt][1], "only VP9 profile 0 is accepted"
                    if codec.startswith("rtx/"):
                        assert params == m_offer[pt][1]  # apt of the offer's own PT
            video = [m for m in answered if any(c.startswith("vp8/") for c, _ in m.values())]
            assert video, "video m-lines accept VP8"
    finally:
        await pc.close()


# ---- VP8 payload descriptors stay continuous across layer switches


def vp8_payload(picture_id: int, tl0: int, *, key: bool, keyidx: int = 0) -> bytes:
    """Start of a VP8 frame with X, I (15-bit PictureID), L, T and K set (RFC 7741 §4.2)."""
    head = bytes([0x90, 0xF0, 0x80 | (picture_id >> 8), picture_id & 0xFF, tl0, keyidx & 0x1F])
    frame = KEY[3:] if key else DELTA[3:]  # KEY/DELTA: 3-byte descriptor, then the VP8 frame
    return head + frame


def descriptor(data: bytes) -> tuple[int, int, int]:
    """(PictureID, TL0PICIDX, KEYIDX) of a forwarded packet."""
    p = RtpPacket.parse(data).payload
    assert p[0] & 0x80 and p[1] == 0xF0 and p[2] & 0x80
    return ((p[2] & 0x7F) << 8) | p[3], p[4], p[5] & 0x1F


async def test_vp8_picture_ids_and_tl0picidx_continue_across_layer_switches(harness: Harness) -> None:
    h = harness
    pid = {"q": 100, "h": 20000, "f": 32765}  # f wraps its 15-bit PictureID while forwarded
    tl0 = {"q": 7, "h": 200, "f": 254}
    keyidx = {"q": 3, "h": 17, "f": 30}

    def feed(rid: str, key: bool = False) -> None:
        if key:
            keyidx[rid] = (keyidx[rid] + 1) & 0x1F
        h.feed(rid, payload=vp8_payload(pid[rid], tl0[rid], key=key, keyidx=keyidx[rid]))
        pid[rid] = (pid[rid] + 1) & 0x7FFF
        tl0[rid] = (tl0[rid] + 1) & 0xFF

    feed("q", key=True)
    for _ in range(3):
        feed("q")
    feed("h")  # not forwarded yet: no keyframe
    feed("h", key=True)
    for _ in range(3):
        feed("h")
        feed("q")
    feed("f", key=True)
    for _ in range(6):
        feed("f")
    assert h.sources() == [1111] * 4 + [2222] * 4 + [3333] * 7
    out = [descriptor(d) for d in h.raw]
    assert out[0] == (100, 7, 4)  # the first segment keeps the source's numbering
    for (p0, t0, _), (p1, t1, _), (seq, _, _) in zip(out, out[1:], h.out[1:], strict=False):
        assert (p1 - p0) & 0x7FFF == 1, (seq, p0, p1)
        assert (t1 - t0) & 0xFF == 1, (seq, t0, t1)
    keyidxs = [k for _, _, k in out]
    assert keyidxs == [4] * 4 + [5] * 4 + [6] * 7  # one more key frame at each switch

    # the shared packets keep their own descriptors; a retransmission carries the rewritten one
    cached = h.up.layer_for_ssrc(3333)
    assert cached is not None and cached.cached(h.seq["f"] - 1) is not None
    assert cached.cached(h.seq["f"] - 1).payload[2:4] == bytes([0x80 | 0, 3])  # type: ignore[union-attr]
    last_seq = h.out[-1][0]
    sent_before = len(h.raw)
    assert h.down.answer_nack([last_seq]) == 1
    assert RtpPacket.parse(h.raw[sent_before]).payload == RtpPacket.parse(h.raw[sent_before - 1]).payload
