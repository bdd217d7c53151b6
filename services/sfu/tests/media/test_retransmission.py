"""Which NACKs a DownTrack answers, and how: audio only where the subscriber negotiated ``nack`` for
the audio codec; RTX (RFC 4588) where it negotiated RTX for the codec (the loopback RTX recovery is in
test_forwarding.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket, RtpPacket

from parley.config import RtcConfig
from parley.sfu.media import DownTrack, MediaContext, UpTrack, configure, new_peer_connection
from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media.aiortc_internals import URI_MID

pytestmark = pytest.mark.unit

OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
OPUS_NACK = RTCRtpCodecParameters(
    mimeType="audio/opus",
    clockRate=48000,
    channels=2,
    payloadType=111,
    rtcpFeedback=[RTCRtcpFeedback(type="nack")],
)
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
VP8_SUB = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=98)
RTX_SUB = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=99, parameters={"apt": 98})
EXTS = [RTCRtpHeaderExtensionParameters(id=4, uri=URI_MID)]


class Link:
    """An UpTrack fed by hand and a DownTrack whose sends are captured."""

    def __init__(self, up: UpTrack, down: DownTrack, pt: int) -> None:
        self.up, self.down, self.pt = up, down, pt
        self.sent: list[RtpPacket] = []
        self.seq = 4000
        down._transmit = self._capture  # type: ignore[method-assign]

    def _capture(self, data: bytes) -> bool:
        if not 200 <= data[1] <= 206:
            self.sent.append(RtpPacket.parse(data))
        return True

    def feed(self, n: int, payload: bytes) -> None:
        for _ in range(n):
            packet = RtpPacket(
                payload_type=self.pt, sequence_number=self.seq, timestamp=self.seq * 960, ssrc=77
            )
            packet.payload = payload
            packet.extensions.mid = "0"
            self.seq += 1
            self.up._on_rtp(packet, 0)


@pytest.fixture
async def link_factory() -> AsyncIterator[Any]:
    configure(RtcConfig(use_loopback=True, port_range_start=43000, port_range_end=43999))
    pcs = []
    made: list[Link] = []

    async def make(
        kind: str, up_codec: RTCRtpCodecParameters, sub_codecs: list[RTCRtpCodecParameters]
    ) -> Link:
        pub_side, sub_side = new_peer_connection(), new_peer_connection()
        pcs.extend([pub_side, sub_side])
        receiver: Any = pub_side.addTransceiver(kind, direction="recvonly").receiver
        context = MediaContext()
        up = UpTrack(receiver, kind=kind, mid="0", track_sid=f"TR_{kind}", context=context)
        await receiver.receive(RTCRtpReceiveParameters(codecs=[up_codec], headerExtensions=EXTS, muxId="0"))
        down = DownTrack.attach(sub_side, up, stream_id="PA_p|TR_x", track_id="TR_x", context=context)
        sender: Any = down.transceiver.sender
        await sender.send(RTCRtpSendParameters(codecs=sub_codecs, headerExtensions=EXTS, muxId="1"))
        link = Link(up, down, up_codec.payloadType or 0)
        made.append(link)
        return link

    try:
        yield make
    finally:
        for link in made:
            link.down.close()
            link.up.close()
        for pc in pcs:
            await pc.close()


async def test_audio_nacks_are_answered_only_where_negotiated(link_factory: Any) -> None:
    plain: Link = await link_factory("audio", OPUS, [OPUS])
    plain.feed(5, b"opus")
    assert len(plain.sent) == 5
    assert plain.down.answer_nack([plain.sent[2].sequence_number]) == 0
    assert len(plain.sent) == 5

    nack: Link = await link_factory("audio", OPUS, [OPUS_NACK])
    nack.feed(5, b"opus")
    lost = nack.sent[2]
    request = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=nack.down.ssrc)
    request.lost = [lost.sequence_number, (nack.sent[-1].sequence_number + 5) & 0xFFFF]  # 2nd: never sent
    nack.down._on_rtcp(request)
    assert len(nack.sent) == 6 and nack.down.nacks_answered == 1
    again = nack.sent[-1]
    assert (again.ssrc, again.sequence_number, again.timestamp, again.payload_type, again.payload) == (
        lost.ssrc,
        lost.sequence_number,
        lost.timestamp,
        111,
        b"opus",
    )


async def test_video_retransmission_is_rtx_when_negotiated(link_factory: Any) -> None:
    key = bytes([0x10, 0x00, 0x00, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00])
    link: Link = await link_factory("video", VP8, [VP8_SUB, RTX_SUB])
    link.feed(1, key)
    link.feed(4, bytes([0x10, 0x01, 0x02]))
    assert [p.payload_type for p in link.sent] == [98] * 5
    lost = [link.sent[1], link.sent[3]]
    assert link.down.answer_nack([p.sequence_number for p in lost]) == 2
    rtx = link.sent[5:]
    rtx_ssrc = internals.sender_rtx_ssrc(link.down.transceiver.sender)
    assert [(p.ssrc, p.payload_type) for p in rtx] == [(rtx_ssrc, 99)] * 2
    assert rtx_ssrc != link.down.ssrc
    assert (rtx[1].sequence_number - rtx[0].sequence_number) & 0xFFFF == 1  # the RTX stream's own numbers
    for original, retransmitted in zip(lost, rtx, strict=True):
        assert retransmitted.payload[:2] == original.sequence_number.to_bytes(2, "big")
        assert retransmitted.payload[2:] == original.payload
        assert retransmitted.timestamp == original.timestamp
    assert link.down.rtx_sent == 2

    # without RTX negotiated: the original packet again, on the media SSRC
    plain: Link = await link_factory("video", VP8, [VP8_SUB])
    plain.feed(1, key)
    plain.feed(2, bytes([0x10, 0x01, 0x02]))
    assert plain.down.answer_nack([plain.sent[1].sequence_number]) == 1
    again = plain.sent[-1]
    assert (again.ssrc, again.sequence_number, again.payload_type) == (
        plain.down.ssrc,
        plain.sent[1].sequence_number,
        98,
    )
    assert plain.down.rtx_sent == 0
