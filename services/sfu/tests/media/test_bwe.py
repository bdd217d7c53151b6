"""The publisher bandwidth estimate: loss-based, with floor and cap; one REMB per peer connection."""

from __future__ import annotations

from typing import Any

import pytest
from aiortc.rtp import RTCP_PSFB_APP, RtcpPacket, RtcpPsfbPacket, unpack_remb_fci

from parley.config import RtcConfig
from parley.sfu.media import MediaContext, configure
from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media.bwe import LossBasedEstimator
from parley.sfu.media.errors import MediaConfigError
from parley.sfu.media.publisher_feedback import PublisherFeedback
from parley.sfu.media.settings import BweSettings

pytestmark = pytest.mark.unit

SETTINGS = BweSettings(min_bps=1_000_000, start_bps=2_000_000, max_bps=4_000_000)


def _run(
    est: LossBasedEstimator, *, loss: float, seconds: float, t0: float = 0.0, step: float = 0.5
) -> float:
    """Windows of 100 expected packets with ``loss``; returns the end time."""
    t = t0
    while t < t0 + seconds - 1e-9:
        t += step
        est.update(expected=100, lost=round(100 * loss), now=t)
    return t


def test_low_loss_raises_the_estimate_by_8_percent_per_second_up_to_the_cap() -> None:
    est = LossBasedEstimator(SETTINGS)
    assert est.estimate == 2_000_000
    est.update(expected=100, lost=0, now=0.0)  # the first judged window sets the clock
    _run(est, loss=0.01, seconds=3.0)
    assert est.estimate == pytest.approx(2_000_000 * 1.08**3, rel=0.01)
    _run(est, loss=0.0, seconds=30.0, t0=3.0)
    assert est.estimate == 4_000_000


def test_high_loss_lowers_the_estimate_and_the_floor_holds() -> None:
    est = LossBasedEstimator(SETTINGS)
    est.update(expected=100, lost=20, now=0.0)
    assert est.estimate == int(2_000_000 * (1 - 0.2 / 2))
    assert est.last_loss == pytest.approx(0.2)
    est.update(expected=100, lost=20, now=0.1)  # at most one decrease per 300 ms
    assert est.estimate == int(2_000_000 * 0.9)
    _run(est, loss=0.5, seconds=10.0, t0=0.1)
    assert est.estimate == 1_000_000  # never below the floor
    est.update(expected=100, lost=100, now=20.0)
    assert est.estimate == 1_000_000


def test_moderate_loss_holds_and_small_windows_accumulate() -> None:
    est = LossBasedEstimator(SETTINGS)
    _run(est, loss=0.05, seconds=5.0)
    assert est.estimate == 2_000_000
    est2 = LossBasedEstimator(SETTINGS)
    for i in range(3):  # 15 expected packets: not enough to judge
        est2.update(expected=5, lost=5, now=i * 0.5)
    assert est2.estimate == 2_000_000 and est2.last_loss is None
    est2.update(expected=5, lost=0, now=1.5)  # 20 packets, 15 lost: 75 %
    assert est2.last_loss == pytest.approx(0.75)
    assert est2.estimate == int(2_000_000 * (1 - 0.75 / 2))


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        BweSettings(min_bps=3_000_000, start_bps=2_000_000)
    with pytest.raises(ValueError):
        BweSettings(low_loss=0.2, high_loss=0.1)


class _Member:
    def __init__(self, ssrc: int | None) -> None:
        self.feedback_ssrc = ssrc


async def test_one_remb_per_connection_covers_every_layer_and_counts_rtx_padding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[bytes] = []

    def capture(transport: Any, data: bytes) -> bool:
        sent.append(data)
        return True

    monkeypatch.setattr(internals, "send_rtp_sync", capture)
    context = MediaContext(bwe=SETTINGS)
    transport: Any = object()
    camera, screen = _Member(None), _Member(0xABC)
    feedback = PublisherFeedback.join(context, transport, camera)
    assert PublisherFeedback.join(context, transport, screen) is feedback
    assert PublisherFeedback.for_transport(context, transport) is feedback
    assert PublisherFeedback.for_transport(MediaContext(), transport) is None  # another node's

    # the first packet of the connection sends the start estimate right away
    feedback.on_packet(1111, 10, 1200, True, 0.0)
    [first] = sent
    [remb] = RtcpPacket.parse(first)
    assert isinstance(remb, RtcpPsfbPacket) and remb.fmt == RTCP_PSFB_APP
    assert (remb.ssrc, remb.media_ssrc) == (0xABC, 0)
    assert unpack_remb_fci(remb.fci) == (2_000_000, [1111])

    # q, h, f layers and an RTX stream that only carries padding probes; f loses 30 of 60 packets
    for i in range(1, 60):
        feedback.on_packet(1111, 10 + i, 1200, True, i / 100)
        feedback.on_packet(2222, 500 + i, 1200, True, i / 100)
        if i % 2:
            feedback.on_packet(3333, 65500 + i, 1200, True, i / 100)  # wraps around 65535
        feedback.on_packet(4444, 7 + i, 256, False, i / 100)
    assert feedback.update(0.6) == int(2_000_000 * (1 - (29 / 237) / 2))
    assert feedback.estimator.last_loss == pytest.approx(29 / 237)  # gaps of f only
    assert context.stats.packets_lost_in == 29
    assert feedback.incoming_bps > 0
    assert feedback.send_remb()
    [last] = RtcpPacket.parse(sent[-1])
    assert isinstance(last, RtcpPsfbPacket)
    bitrate, ssrcs = unpack_remb_fci(last.fci)
    assert bitrate == pytest.approx(feedback.estimator.estimate, rel=1e-5)  # 18-bit mantissa
    assert sorted(ssrcs) == [1111, 2222, 3333]  # every media SSRC, not the RTX one

    feedback.leave(camera)
    assert PublisherFeedback.for_transport(context, transport) is feedback
    feedback.leave(screen)
    assert feedback.closed and PublisherFeedback.for_transport(context, transport) is None
    assert len(context.transports) == 0


def _rtc(**bwe: int) -> RtcConfig:
    return RtcConfig.model_validate(
        {"use_loopback": True, "port_range_start": 42000, "port_range_end": 42999, **bwe}
    )


def test_configured_bounds_reach_the_estimator() -> None:
    try:
        context = configure(
            _rtc(bwe_min_bitrate=700_000, bwe_start_bitrate=1_200_000, bwe_max_bitrate=2_500_000)
        )
        transport: Any = object()
        member = _Member(0xABC)
        feedback = PublisherFeedback.join(context, transport, member)
        est = feedback.estimator
        assert (est.settings.min_bps, est.settings.max_bps) == (700_000, 2_500_000)
        assert est.estimate == 1_200_000  # the first REMB a publisher gets
        est.update(expected=100, lost=100, now=0.0)
        assert est.estimate == 700_000  # the configured floor
        _run(est, loss=0.0, seconds=60.0)
        assert est.estimate == 2_500_000  # the configured cap
        feedback.leave(member)

        # a start value outside [min, max] is clamped; a floor above the cap is refused
        clamped = configure(_rtc(bwe_start_bitrate=20_000_000)).bwe
        assert clamped.start_bps == clamped.max_bps == 10_000_000
        with pytest.raises(MediaConfigError, match="bwe_min_bitrate"):
            configure(_rtc(bwe_min_bitrate=5_000_000, bwe_max_bitrate=4_000_000))
    finally:
        defaults = configure(_rtc())
    assert defaults.bwe == BweSettings()  # the defaults of RtcConfig are the defaults of the estimator
