"""Transport-wide-cc on real aiortc peers over loopback: negotiation only where the SFU only sends,
sequence numbers stamped on the wire, TWCC feedback and REMB from the subscriber reach its
SubscriberCongestion through the transport's RTCP tap.

aiortc neither negotiates transport-cc as a receiver nor sends TWCC feedback, so the subscriber here
plays a browser: its answer/offer is munged to accept transport-cc, and it sends crafted feedback.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci

from parley.config import RtcConfig
from parley.sfu.media import MediaContext, new_peer_connection
from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media.aiortc_internals import URI_TWCC
from parley.sfu.media.congestion import SubscriberCongestion, build_feedback
from parley.sfu.media.congestion.fakes import FakeAllocatable
from parley.sfu.media.rtp_writer import RtpWriter
from parley.testing import poll_until

pytestmark = pytest.mark.unit


def _accept_transport_cc(sdp: str, ext_id: int) -> str:
    """What Chrome's SDP has on every m-line: the extension and transport-cc feedback per codec."""
    sections = re.split(r"(?=^m=)", sdp, flags=re.M)
    out = [sections[0]]
    for section in sections[1:]:
        if URI_TWCC in section:  # aiortc itself offers it where it only sends
            out.append(section)
            continue
        pts = section.split("\r\n", 1)[0].split()[3:]
        extra = f"a=extmap:{ext_id} {URI_TWCC}\r\n" + "".join(
            f"a=rtcp-fb:{pt} transport-cc\r\n" for pt in pts
        )
        out.append(section + extra)
    return "".join(out)


def _twcc_id(sdp: str) -> int | None:
    found = re.search(rf"a=extmap:(\d+) {re.escape(URI_TWCC)}", sdp)
    return int(found.group(1)) if found else None


async def test_answers_keep_transport_cc_only_where_we_only_send(rtc: RtcConfig) -> None:
    """v1: the client's recvonly m-line answered sendonly keeps it; its publishing m-line (as any
    publisher offer, v0 too) is answered without it although the offer had it."""
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sfu = new_peer_connection()
    try:
        client.addTransceiver("video", direction="recvonly")
        client.addTransceiver("audio", direction="sendonly")
        await client.setLocalDescription(await client.createOffer())
        offer = _accept_transport_cc(client.localDescription.sdp, 9)
        await sfu.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        video, _audio = sfu.getTransceivers()
        video.direction = "sendonly"  # what DownTrack.attach does to the client's recvonly m-line
        await sfu.setLocalDescription(await sfu.createAnswer())
        video_m, audio_m = sfu.localDescription.sdp.split("\r\nm=")[1:]
        assert _twcc_id(video_m) == 9 and "transport-cc" in video_m  # the offer's id
        assert _twcc_id(audio_m) is None and "transport-cc" not in audio_m  # the client publishes audio
        assert _twcc_id(offer.split("\r\nm=")[2]) is not None
    finally:
        await client.close()
        await sfu.close()


async def test_stamped_packets_and_feedback_over_a_real_transport(rtc: RtcConfig) -> None:
    context = MediaContext.from_config(rtc)
    sfu = new_peer_connection()
    sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    member = FakeAllocatable("TR_v", [150_000, 500_000, 1_500_000])
    try:
        sent = sfu.addTransceiver("video", direction="sendonly")
        internals.hook_sender(sent.sender, on_rtcp=lambda p: None, on_parameters=lambda p: None)
        await sfu.setLocalDescription(await sfu.createOffer())
        offer = sfu.localDescription.sdp
        ext_id = _twcc_id(offer)
        assert ext_id is not None and "transport-cc" in offer

        received: list[tuple[int, int]] = []
        await sub.setRemoteDescription(sfu.localDescription)
        receiver = sub.getTransceivers()[0].receiver
        internals.hook_receiver(
            receiver,
            on_rtp=lambda p, ms: (
                received.append((p.extensions.transport_sequence_number, ms))
                if p.extensions.transport_sequence_number is not None
                else None
            ),
            on_rtcp=lambda p: None,
            on_parameters=lambda p: None,
        )
        await sub.setLocalDescription(await sub.createAnswer())
        answer = _accept_transport_cc(sub.localDescription.sdp, ext_id)
        await sfu.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        t: Any = sent
        negotiated = {e.uri: e.id for e in t._headerExtensions}
        assert negotiated.get(URI_TWCC) == ext_id  # what the sender (and its RtpWriter) gets

        transport = sent.sender.transport
        await poll_until(lambda: internals.transport_connected(transport), message="connected")
        sub_transport: Any = receiver.transport
        sub_transport._rtp_header_extensions_map.configure(  # the browser parses what it accepted
            RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=ext_id, uri=URI_TWCC)])
        )
        cc = SubscriberCongestion.join(context, transport, member)
        writer = RtpWriter(negotiated, sent.mid)
        assert writer.twcc_enabled
        pt = t._codecs[0].payloadType
        cc._seq = 65530  # the wrap on the wire too
        for i in range(20):
            packet = RtpPacket(
                payload_type=pt, sequence_number=i, timestamp=i * 3000, payload=b"\x10\x00" * 300
            )
            seq = cc.on_rtp_sent(len(packet.payload) + 40, time.monotonic())
            data = writer.write(
                packet,
                payload_type=pt,
                seq=i,
                ts=i * 3000,
                ssrc=internals.sender_ssrc(sent.sender),
                twcc_seq=seq,
            )
            assert internals.send_rtp_sync(transport, data)
        await poll_until(lambda: len(received) == 20, message="20 stamped packets")
        assert [s for s, _ in received] == [(65530 + i) & 0xFFFF for i in range(20)]

        arrivals: list[float | None] = [ms / 1000 for _, ms in received]
        arrivals[4] = None  # the browser lost one
        await sub_transport._send_rtp(build_feedback(base_seq=65530, arrivals=arrivals, fb_count=1))
        await poll_until(lambda: cc.feedback_received == 1, message="TWCC feedback delivered")
        assert cc.estimator.feedback_count == 1 and cc.feedback_errors == 0

        remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(400_000, [1]))
        await sub_transport._send_rtp(bytes(remb))
        await poll_until(lambda: cc.estimate_bps == 400_000, message="REMB bounds the estimate")
    finally:
        cc_left = SubscriberCongestion.for_transport(context, sent.sender.transport)
        if cc_left is not None:
            cc_left.leave(member)
        await sfu.close()
        await sub.close()
