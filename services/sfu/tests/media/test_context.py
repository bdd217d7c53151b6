"""Two media contexts (two SFU nodes' engines) in one process share nothing: real UpTracks and
DownTracks on unconnected aiortc peer connections, fed crafted RTP; each context counts only its own
packets, keeps its own settings, per-transport state and output streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import RtpPacket

from parley.config import RtcConfig
from parley.sfu.media import DownTrack, MediaContext, UpTrack, configure, new_peer_connection
from parley.sfu.media.aiortc_internals import URI_MID
from parley.sfu.media.congestion import CongestionConfig, SubscriberCongestion
from parley.sfu.media.congestion.fakes import FakeAllocatable
from parley.sfu.media.publisher_feedback import PublisherFeedback

pytestmark = pytest.mark.unit

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
EXTS = [RTCRtpHeaderExtensionParameters(id=4, uri=URI_MID)]
KEY = bytes([0x90, 0x80, 0x01, 0x00, 0x00, 0x00]) + b"\x9d\x01\x2a" + (640).to_bytes(2, "little") * 2
DELTA = bytes([0x90, 0x80, 0x01, 0x01, 0, 0, 0])


@dataclass
class Engine:
    """One node's engine: a context, one published video track and one subscriber of it."""

    context: MediaContext
    up: UpTrack
    down: DownTrack
    pcs: tuple[RTCPeerConnection, RTCPeerConnection]
    sent: list[bytes]
    seq: int = 100

    def feed(self, count: int) -> None:
        for i in range(count):
            packet = RtpPacket(
                payload_type=96, sequence_number=self.seq, timestamp=3000 * self.seq, ssrc=4242
            )
            packet.payload = KEY if i == 0 else DELTA
            packet.extensions.mid = "0"
            self.seq += 1
            self.up._on_rtp(packet, 0)

    async def aclose(self) -> None:
        self.down.close()
        self.up.close()
        for pc in self.pcs:
            await pc.close()


async def _engine(context: MediaContext) -> Engine:
    pub_side, sub_side = new_peer_connection(), new_peer_connection()
    receiver: Any = pub_side.addTransceiver("video", direction="recvonly").receiver
    up = UpTrack(receiver, kind="video", mid="0", track_sid="TR_v", context=context)
    await receiver.receive(RTCRtpReceiveParameters(codecs=[VP8], headerExtensions=EXTS, muxId="0"))
    down = DownTrack.attach(sub_side, up, stream_id="PA_p|TR_v", track_id="TR_v", context=context)
    sender: Any = down.transceiver.sender
    await sender.send(RTCRtpSendParameters(codecs=[VP8], headerExtensions=EXTS, muxId="1"))
    sent: list[bytes] = []

    def capture(data: bytes) -> bool:
        if not 200 <= data[1] <= 206:  # RTP, not RTCP
            sent.append(data)
        return True

    down._transmit = capture  # type: ignore[method-assign]
    return Engine(context, up, down, (pub_side, sub_side), sent)


@pytest.fixture
async def engines() -> AsyncIterator[tuple[Engine, Engine]]:
    configure(RtcConfig(use_loopback=True, port_range_start=44000, port_range_end=44999))
    a = await _engine(MediaContext.from_config(RtcConfig(packet_cache_size=256)))
    b = await _engine(
        MediaContext.from_config(RtcConfig(packet_cache_size=1024, bwe_start_bitrate=2_000_000))
    )
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def test_two_contexts_count_and_keep_their_own_state(engines: tuple[Engine, Engine]) -> None:
    a, b = engines
    a.feed(10)
    b.feed(3)
    assert len(a.sent) == 10 and len(b.sent) == 3  # both forward
    assert (a.context.stats.packets_in, a.context.stats.packets_out) == (10, 10)
    assert (b.context.stats.packets_in, b.context.stats.packets_out) == (3, 3)
    assert a.context.stats.tracks_in == a.context.stats.tracks_out == 1
    assert b.context.stats.tracks_in == b.context.stats.tracks_out == 1
    assert a.context.stats.bytes_out == sum(map(len, a.sent))

    # settings: each track was built with its own context's
    assert a.down._ring_size == 256 and b.down._ring_size == 1024
    assert a.up.feedback.estimator.estimate == a.context.bwe.start_bps == 3_000_000
    assert b.up.feedback.estimator.estimate == b.context.bwe.start_bps == 2_000_000

    # per-transport state and output streams live in their own context only
    a_transport = a.up.feedback.transport
    assert PublisherFeedback.for_transport(a.context, a_transport) is a.up.feedback
    assert PublisherFeedback.for_transport(b.context, a_transport) is None
    assert a.context.out_streams.peek(a.down.transceiver.sender) is not None
    assert b.context.out_streams.peek(a.down.transceiver.sender) is None

    # a media-path error is counted by the context whose track raised it
    a.down.forward = lambda *args: 1 / 0  # type: ignore[method-assign,assignment,return-value]
    a.feed(1)
    assert (a.context.stats.errors, b.context.stats.errors) == (1, 0)


async def test_closing_one_engine_leaves_the_other_untouched(engines: tuple[Engine, Engine]) -> None:
    a, b = engines
    a.down.close()
    a.up.close()
    assert a.context.stats.tracks_in == a.context.stats.tracks_out == 0
    assert len(a.context.transports) == 0
    assert b.context.stats.tracks_in == b.context.stats.tracks_out == 1
    assert len(b.context.transports) == 1
    b.feed(5)
    assert len(b.sent) == 5


def test_subscriber_congestion_takes_the_contexts_config() -> None:
    fast = MediaContext(congestion=CongestionConfig(tick_s=0.05))
    default = MediaContext()
    member = FakeAllocatable("TR_v")
    cc = SubscriberCongestion.join(fast, _Transport(), member)  # type: ignore[arg-type]
    other = SubscriberCongestion.join(default, _Transport(), member)  # type: ignore[arg-type]
    assert cc.config.tick_s == 0.05 and other.config.tick_s == CongestionConfig().tick_s
    assert [*fast.transports.congestions()] == [cc] and [*default.transports.congestions()] == [other]
    cc.leave(member)
    other.leave(member)
    assert len(fast.transports) == len(default.transports) == 0


class _Transport:
    """What the congestion controller's RTCP tap needs of a DTLS transport."""

    async def _handle_rtcp_data(self, data: bytes) -> None:
        pass


def _host_ports(sdp: str) -> set[tuple[str, int]]:
    found = set()
    for line in sdp.splitlines():
        if line.startswith("a=candidate:") and " typ host" in line:
            fields = line.split()
            found.add((fields[4], int(fields[5])))
    return found


async def test_each_context_gathers_on_its_own_port_range() -> None:
    configure(RtcConfig(use_loopback=True, port_range_start=44300, port_range_end=44349))  # process default
    one = MediaContext.from_config(RtcConfig(use_loopback=True, port_range_start=44350, port_range_end=44399))
    two = MediaContext.from_config(RtcConfig(use_loopback=True, port_range_start=44400, port_range_end=44449))
    pcs = {"one": new_peer_connection(one), "two": new_peer_connection(two), "none": new_peer_connection()}
    try:
        gathered = {}
        for name, pc in pcs.items():
            pc.createDataChannel("x")
            await pc.setLocalDescription(await pc.createOffer())
            gathered[name] = _host_ports(pc.localDescription.sdp)
        assert gathered["one"] and all(ip == "127.0.0.1" and 44350 <= p <= 44399 for ip, p in gathered["one"])
        assert gathered["two"] and all(ip == "127.0.0.1" and 44400 <= p <= 44449 for ip, p in gathered["two"])
        assert gathered["none"] and all(44300 <= p <= 44349 for _, p in gathered["none"])
    finally:
        for pc in pcs.values():
            await pc.close()


def test_an_ice_restart_connection_inherits_the_scope() -> None:
    from parley.sfu.media import aiortc_internals as internals

    old, new, bare = SimpleNamespace(), SimpleNamespace(), SimpleNamespace()
    scope = internals.NetworkScope(internals.PortAllocator(1, 2), ["10.0.0.1"])
    setattr(old, "_parley_network", scope)  # noqa: B010
    internals.inherit_scope(old, new)
    internals.inherit_scope(SimpleNamespace(), bare)
    assert new._parley_network is scope and not hasattr(bare, "_parley_network")
