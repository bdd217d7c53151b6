"""SubscriberCongestion: registry, sequence numbers, feedback, allocation and probe padding (no network)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

from parley.sfu.media import MediaContext
from parley.sfu.media.congestion import SubscriberCongestion, build_feedback
from parley.sfu.media.congestion.config import AllocatorConfig, CongestionConfig
from parley.sfu.media.congestion.fakes import FakeAllocatable
from parley.sfu.media.congestion.subscriber import _route_rtcp

pytestmark = pytest.mark.unit

SIMULCAST = [150_000, 500_000, 1_500_000]


class FakeTransport:
    """Stands in for an RTCDtlsTransport: the RTCP tap replaces ``_handle_rtcp_data``."""

    def __init__(self) -> None:
        self.rtcp: list[bytes] = []

    async def _handle_rtcp_data(self, data: bytes) -> None:
        self.rtcp.append(data)


CONTEXT = MediaContext()


def _join(
    transport: Any, member: FakeAllocatable, video: bool = True, context: MediaContext = CONTEXT
) -> SubscriberCongestion:
    return SubscriberCongestion.join(context, transport, member, video=video)


def test_one_controller_per_transport_until_the_last_member_leaves() -> None:
    t1, t2 = FakeTransport(), FakeTransport()
    a, b, c = FakeAllocatable("a"), FakeAllocatable("b"), FakeAllocatable("c")
    cc = _join(t1, a)
    assert _join(t1, b, video=False) is cc and _join(t2, c) is not cc
    assert cc.video == [a] and cc.audio == [b]
    other = MediaContext()
    assert _join(t1, c, context=other) is not cc  # another node's controller of the same transport
    cc.leave(a)
    assert SubscriberCongestion.for_transport(CONTEXT, t1) is cc  # type: ignore[arg-type]
    cc.leave(b)
    assert cc.closed and SubscriberCongestion.for_transport(CONTEXT, t1) is None  # type: ignore[arg-type]
    assert SubscriberCongestion.for_transport(other, t1) is not None  # type: ignore[arg-type]
    assert _join(t1, a) is not cc  # a fresh one
    SubscriberCongestion.for_transport(CONTEXT, t1).leave(a)  # type: ignore[arg-type,union-attr]
    SubscriberCongestion.for_transport(CONTEXT, t2).leave(c)  # type: ignore[arg-type,union-attr]
    SubscriberCongestion.for_transport(other, t1).leave(c)  # type: ignore[arg-type,union-attr]
    assert len(CONTEXT.transports) == len(other.transports) == 0


def test_sequence_numbers_wrap_and_feedback_reaches_the_estimator() -> None:
    transport = FakeTransport()
    member = FakeAllocatable("v", SIMULCAST)
    cc = _join(transport, member)
    try:
        cc._seq = 65530
        seqs = [cc.on_rtp_sent(1200, 10.0 + i * 0.004) for i in range(20)]
        assert seqs[:7] == [65530, 65531, 65532, 65533, 65534, 65535, 0]
        arrivals: list[float | None] = [100.0 + i * 0.004 for i in range(20)]
        arrivals[3] = None
        feedback = build_feedback(base_seq=65530, arrivals=arrivals)
        assert cc.on_feedback(feedback, now=10.2) == 3_000_000
        assert cc.feedback_received == 1 and cc.estimator.feedback_count == 1
        assert cc.on_feedback(b"\x8f\xcd\x00\x01garbage", now=10.3) == 3_000_000
        assert cc.feedback_errors == 1
    finally:
        cc.leave(member)


def test_the_rtcp_tap_consumes_twcc_and_reads_remb() -> None:
    transport = FakeTransport()
    member = FakeAllocatable("v", SIMULCAST)
    cc = _join(transport, member)
    try:
        cc.on_rtp_sent(1200, 1.0)
        twcc = build_feedback(base_seq=0, arrivals=[5.0])
        assert _route_rtcp(CONTEXT, transport, 205, 15, twcc) is True  # type: ignore[arg-type]
        assert cc.feedback_received == 1
        remb = bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(700_000, [5])))
        assert _route_rtcp(CONTEXT, transport, 206, 15, remb) is False  # type: ignore[arg-type]
        assert cc.estimate_bps == pytest.approx(700_000, rel=0.01)
        assert _route_rtcp(CONTEXT, transport, 205, 1, b"") is False  # type: ignore[arg-type]
    finally:
        cc.leave(member)


def test_tick_allocates_reserving_audio_and_probes_for_a_deficient_track() -> None:
    transport = FakeTransport()
    context = MediaContext(congestion=CongestionConfig(allocator=AllocatorConfig(audio_bps=64_000)))
    try:
        video = FakeAllocatable("v", SIMULCAST, pixels=1280 * 720)
        audio = FakeAllocatable("a")
        cc = _join(transport, video, context=context)
        _join(transport, audio, video=False, context=context)
        cc.on_remb(1_200_000, now=0.0)  # a receiver without TWCC: the REMB is the estimate
        allocation = cc.tick(0.0)
        assert allocation.layers == {"v": 1} and video.allocations == [1]
        assert allocation.committed_bps == 64_000 + 500_000
        assert cc.prober.probing  # f needs (64k + 1.5M) x 1.1 > 1.2M
        for i in range(10):
            cc.on_rtp_sent(1200, 0.02 * i)  # 96 kbit of media over the 0.2 s tick
        cc.tick(0.2)
        assert cc.sending_bps == pytest.approx(480_000)
        sent = cc.pad(0.3)
        assert sent > 0 and video.padding and video.padding[0][0] == 255
        assert cc.padding_sent == sent
        # (goal 1.72M - media 480k) x 0.3 s since the cluster began = 46 kB, capped per track and call
        assert sent == 64 * 255
        # the next call pads (goal - media) x 0.02 s
        assert cc.pad(0.32) == pytest.approx((1_720_400 - 480_000) * 0.02 / 8, abs=255)
        padded = cc.history.result(cc.on_rtp_sent(255, 0.3, probe=True), 1.0)
        assert padded is not None and padded.probe
    finally:
        cc.leave(video)
        cc.leave(audio)


async def test_timers_run_and_stop_with_the_last_member() -> None:
    transport = FakeTransport()
    video = FakeAllocatable("v", SIMULCAST)
    cc = _join(transport, video, context=MediaContext(congestion=CongestionConfig(tick_s=0.01)))
    await asyncio.sleep(0.05)
    assert cc.allocation is not None and video.allocations == [2]
    cc.leave(video)
    assert cc._timer is None and cc._probe_timer is None
