"""RtpTap: a real UpTrack fed with crafted RTP, its tap sending plain RTP to a real loopback UDP socket
(the egress worker's side), RTCP sent back on that socket."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
)
from aiortc.rtp import (
    RTCP_BYE,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RTCP_SR,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    is_rtcp,
)

from parley.config import RtcConfig
from parley.sfu.media import MediaContext, RtpTap, TapError, UpTrack, configure, new_peer_connection
from parley.sfu.media.aiortc_internals import URI_MID, URI_RID
from parley.sfu.media.layers import Layer
from parley.testing import poll_until

pytestmark = pytest.mark.unit

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(
    mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111, parameters={"minptime": 10}
)
EXTS = [
    RTCRtpHeaderExtensionParameters(id=4, uri=URI_MID),
    RTCRtpHeaderExtensionParameters(id=10, uri=URI_RID),
]
KEY = bytes([0x90, 0x80, 0x01, 0x00, 0x00, 0x00]) + b"\x9d\x01\x2a" + (640).to_bytes(2, "little") * 2
DELTA = bytes([0x90, 0x80, 0x01, 0x01, 0, 0, 0])


@pytest.fixture(autouse=True)
def _configured() -> None:
    configure(RtcConfig(use_loopback=True, port_range_start=42000, port_range_end=42999))


@dataclass
class Receiver(asyncio.DatagramProtocol):
    """The egress worker's socket: what the tap sends, split into RTP and RTCP."""

    rtp: list[bytes] = field(default_factory=list)
    rtcp: list[bytes] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    tap_addr: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.tap_addr = (addr[0], addr[1])
        (self.rtcp if is_rtcp(data) else self.rtp).append(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    def send(self, data: bytes, tap: RtpTap) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (tap.source_host, tap.source_port))

    def headers(self) -> list[tuple[int, int, int, int]]:
        """(payload type, seq, timestamp, ssrc) of every RTP packet received."""
        return [
            (
                d[1] & 0x7F,
                int.from_bytes(d[2:4], "big"),
                int.from_bytes(d[4:8], "big"),
                int.from_bytes(d[8:12], "big"),
            )
            for d in self.rtp
        ]

    def rtcp_types(self) -> list[int]:
        return [d[1] for d in self.rtcp]


class Feeder:
    """Crafted RTP into a real UpTrack (as its aiortc receiver would deliver it)."""

    def __init__(self, up: UpTrack, pt: int) -> None:
        self.up = up
        self.pt = pt
        self.seq = {"q": 100, "h": 5000, "f": 30000, "": 700}
        self.ssrc = {"q": 1111, "h": 2222, "f": 3333, "": 4444}
        self.ts = {"q": 10, "h": 1_000_000, "f": 7_000_000, "": 500}
        self.keyframe_requests: list[str | None] = []
        original = up.request_keyframe

        def record(layer: Layer | None, now: float | None = None) -> bool:
            self.keyframe_requests.append(layer.rid if layer is not None else None)
            return original(layer, now)

        up.request_keyframe = record  # type: ignore[method-assign]

    def feed(self, rid: str = "", key: bool = False, payload: bytes | None = None) -> None:
        packet = RtpPacket(
            payload_type=self.pt, sequence_number=self.seq[rid], timestamp=self.ts[rid], ssrc=self.ssrc[rid]
        )
        packet.payload = payload if payload is not None else KEY if key else DELTA
        if rid:
            packet.extensions.rtp_stream_id = rid
        self.seq[rid] = (self.seq[rid] + 1) & 0xFFFF
        self.ts[rid] += 3000
        self.up._on_rtp(packet, 0)


@dataclass
class Setup:
    context: MediaContext
    feeder: Feeder
    receiver: Receiver
    ended: list[str]
    taps: list[RtpTap]

    async def open(self, *, rtcp_timeout: float = 5.0, muted: bool = False) -> RtpTap:
        tap = await RtpTap.open(
            self.feeder.up,
            host="127.0.0.1",
            port=self.receiver.port,
            bind_host="127.0.0.1",
            context=self.context,
            rtcp_timeout=rtcp_timeout,
            on_end=lambda _tap, reason: self.ended.append(reason),
            muted=muted,
            fields={"track": self.feeder.up.track_sid},
        )
        self.taps.append(tap)
        return tap


async def _setup(kind: str, codec: RTCRtpCodecParameters) -> AsyncIterator[Setup]:
    pc = new_peer_connection()
    transceiver = pc.addTransceiver(kind, direction="recvonly")
    receiver: Any = transceiver.receiver
    context = MediaContext()
    up = UpTrack(receiver, kind=kind, mid="0", track_sid=f"TR_{kind}", context=context)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[codec], headerExtensions=EXTS, muxId="0"))
    loop = asyncio.get_running_loop()
    worker = Receiver()
    transport, _ = await loop.create_datagram_endpoint(lambda: worker, local_addr=("127.0.0.1", 0))
    setup = Setup(context, Feeder(up, codec.payloadType or 0), worker, [], [])
    try:
        yield setup
    finally:
        for tap in setup.taps:
            tap.end("test over", bye=False)
        transport.close()
        up.close()
        await pc.close()


@pytest.fixture
async def video() -> AsyncIterator[Setup]:
    async for setup in _setup("video", VP8):
        yield setup


@pytest.fixture
async def audio() -> AsyncIterator[Setup]:
    async for setup in _setup("audio", OPUS):
        yield setup


def contiguous(seqs: list[int]) -> bool:
    return all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


async def test_audio_arrives_as_plain_rtp_with_one_ssrc_and_contiguous_seq(audio: Setup) -> None:
    tap = await audio.open()
    assert (tap.codec.mime_type, tap.codec.payload_type, tap.codec.clock_rate) == ("audio/opus", 111, 48000)
    assert tap.codec.channels == 2 and tap.codec.fmtp == "minptime=10"
    assert tap.source_host == "127.0.0.1" and tap.source_port > 0
    for i in range(20):
        audio.feeder.feed(payload=bytes([i]) * 40)
    await poll_until(lambda: len(audio.receiver.rtp) == 20, message="20 packets at the worker")
    headers = audio.receiver.headers()
    assert {pt for pt, _, _, _ in headers} == {111}
    assert {ssrc for _, _, _, ssrc in headers} == {tap.ssrc}
    assert contiguous([seq for _, seq, _, _ in headers])
    assert audio.receiver.rtp[3] == audio.receiver.rtp[3][:12] + bytes([3]) * 40  # a 12-byte header
    assert audio.receiver.tap_addr == (tap.source_host, tap.source_port)


async def test_video_waits_for_a_keyframe_asks_for_one_and_forwards_the_top_layer(video: Setup) -> None:
    feeder = video.feeder
    tap = await video.open()
    assert tap.codec.mime_type == "video/VP8" and tap.codec.payload_type == 96
    assert feeder.keyframe_requests == [None]  # asked for at once
    for _ in range(3):
        feeder.feed("q")
        feeder.feed("f")
    assert tap.packets_sent == 0 and "f" in feeder.keyframe_requests
    feeder.feed("q", key=True)  # a keyframe, but not of the top layer
    feeder.feed("f", key=True)
    for _ in range(5):
        feeder.feed("q")
        feeder.feed("f")
    assert tap.current_layer is not None and tap.current_layer.rid == "f"
    await poll_until(lambda: len(video.receiver.rtp) == 6, message="the top layer from its keyframe")
    headers = video.receiver.headers()
    assert {ssrc for _, _, _, ssrc in headers} == {tap.ssrc}
    assert contiguous([seq for _, seq, _, _ in headers])


async def test_layer_switches_keep_one_continuous_stream(video: Setup) -> None:
    feeder = video.feeder
    tap = await video.open()
    feeder.feed("h", key=True)
    feeder.feed("h")
    feeder.feed("f")  # the top layer appears mid-frame: h keeps flowing until f's keyframe
    feeder.feed("h")
    feeder.feed("f", key=True)
    feeder.feed("f")
    assert tap.current_layer is not None and tap.current_layer.rid == "f"
    await poll_until(lambda: len(video.receiver.rtp) == 5, message="h then f")
    headers = video.receiver.headers()
    assert {ssrc for _, _, _, ssrc in headers} == {tap.ssrc}
    assert contiguous([seq for _, seq, _, _ in headers])
    tss = [ts for _, _, ts, _ in headers]
    assert all(0 <= (b - a) & 0xFFFFFFFF < 0x80000000 for a, b in itertools.pairwise(tss))


async def test_a_pli_from_the_receiver_asks_the_publisher_for_a_keyframe(video: Setup) -> None:
    tap = await video.open()
    video.feeder.feed("f", key=True)
    video.feeder.keyframe_requests.clear()
    pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=tap.ssrc)
    video.receiver.send(bytes(pli), tap)
    await poll_until(lambda: video.feeder.keyframe_requests == ["f"], message="the PLI passed on")
    assert tap.keyframe_requests_received == 1


async def test_a_nack_is_answered_from_the_packet_cache(video: Setup) -> None:
    tap = await video.open()
    video.feeder.feed("f", key=True)
    for _ in range(4):
        video.feeder.feed("f")
    await poll_until(lambda: len(video.receiver.rtp) == 5, message="5 packets")
    lost = video.receiver.headers()[2][1]
    nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=tap.ssrc)
    nack.lost = [lost]
    video.receiver.send(bytes(nack), tap)
    await poll_until(lambda: len(video.receiver.rtp) == 6, message="the retransmission")
    assert video.receiver.rtp[5] == video.receiver.rtp[2] and tap.nacks_answered == 1


async def test_no_rtcp_for_the_liveness_window_ends_the_tap(audio: Setup) -> None:
    tap = await audio.open(rtcp_timeout=0.4)
    for _ in range(6):  # receiver reports keep it alive past the window
        rr = RtcpRrPacket(ssrc=1, reports=[RtcpReceiverInfo(tap.ssrc, 0, 0, 0, 0, 0, 0)])
        audio.receiver.send(bytes(rr), tap)
        await asyncio.sleep(0.1)
    assert tap.ended is None and tap.rtcp_received >= 5
    await poll_until(lambda: audio.ended != [], timeout=3, message="the tap ended without RTCP")
    assert audio.ended == ["no RTCP for 0.4 s"] and tap.ended == audio.ended[0]
    audio.feeder.feed()
    await asyncio.sleep(0.05)
    assert audio.receiver.rtp == []  # detached from the up track


async def test_end_sends_a_bye_and_detaches(audio: Setup) -> None:
    tap = await audio.open()
    audio.feeder.feed()
    await poll_until(lambda: len(audio.receiver.rtp) == 1, message="one packet")
    tap.end("stopped")
    await poll_until(lambda: RTCP_BYE in audio.receiver.rtcp_types(), message="BYE")
    bye = audio.receiver.rtcp[audio.receiver.rtcp_types().index(RTCP_BYE)]
    assert int.from_bytes(bye[4:8], "big") == tap.ssrc
    assert audio.ended == ["stopped"]
    tap.end("again")  # once
    audio.feeder.feed()
    await asyncio.sleep(0.05)
    assert len(audio.receiver.rtp) == 1 and audio.ended == ["stopped"]


async def test_a_bye_from_the_receiver_ends_the_tap(audio: Setup) -> None:
    tap = await audio.open()
    audio.receiver.send(bytes(RtcpByePacket(sources=[1])), tap)
    await poll_until(lambda: audio.ended == ["receiver sent BYE"], message="ended by the receiver")
    assert tap.ended == "receiver sent BYE"


async def test_muted_sends_nothing_and_video_resumes_on_a_keyframe(video: Setup) -> None:
    feeder = video.feeder
    tap = await video.open(muted=True)
    assert feeder.keyframe_requests == []
    feeder.feed("f", key=True)
    feeder.feed("f")
    assert tap.packets_sent == 0
    tap.set_muted(False)
    assert feeder.keyframe_requests[-1] is None
    feeder.feed("f")
    assert tap.packets_sent == 0  # no keyframe yet
    feeder.feed("f", key=True)
    feeder.feed("f")
    assert tap.packets_sent == 2


async def test_a_sender_report_goes_out_once_media_flows(audio: Setup) -> None:
    tap = await audio.open(rtcp_timeout=0.4)  # ticks every 0.2 s
    audio.feeder.feed()
    await poll_until(lambda: RTCP_SR in audio.receiver.rtcp_types(), timeout=2, message="an SR")
    sr = audio.receiver.rtcp[audio.receiver.rtcp_types().index(RTCP_SR)]
    assert int.from_bytes(sr[4:8], "big") == tap.ssrc


async def test_send_errors_are_counted_never_raised(audio: Setup) -> None:
    tap = await audio.open()
    assert audio.receiver.transport is not None
    audio.receiver.transport.close()  # the worker is gone: ICMP port unreachable
    for _ in range(20):
        audio.feeder.feed()
        await asyncio.sleep(0.005)
    await poll_until(lambda: tap.send_errors > 0, message="send errors counted")
    assert audio.feeder.up.packets_received == 20 and audio.context.stats.errors == 0


async def test_a_tap_of_a_track_without_a_codec_is_refused(audio: Setup) -> None:
    audio.feeder.up.codecs.clear()
    with pytest.raises(TapError, match="no codec"):
        await audio.open()


async def test_packets_of_another_codec_are_dropped(audio: Setup) -> None:
    tap = await audio.open()
    audio.feeder.up.codecs[9] = RTCRtpCodecParameters(mimeType="audio/G722", clockRate=8000, payloadType=9)
    audio.feeder.pt = 9
    audio.feeder.feed()
    assert tap.packets_sent == 0 and tap.packets_dropped == 1
