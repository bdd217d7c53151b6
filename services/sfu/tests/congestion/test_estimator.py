"""The send-side estimator on a simulated bottleneck (deterministic: time is simulated)."""

from __future__ import annotations

import pytest

from parley.sfu.media.congestion.config import EstimatorConfig
from parley.sfu.media.congestion.delay_based import InterArrival, TrendlineDetector, Usage
from parley.sfu.media.congestion.estimator import SendSideEstimator
from parley.sfu.media.congestion.send_history import PacketResult
from parley.sfu.media.congestion.simulation import BottleneckLink, Simulation

pytestmark = pytest.mark.unit


def _window(sim: Simulation, start: float, end: float) -> list[int]:
    return [s.estimate for s in sim.samples if start <= s.t < end]


def test_a_clean_link_keeps_the_start_estimate() -> None:
    sim = Simulation(BottleneckLink(20_000_000), app_bps=2_500_000)
    sim.run_until(10)
    estimates = _window(sim, 0, 10)
    assert min(estimates) >= 3_000_000  # never decreased
    assert sim.estimator.usage is Usage.NORMAL
    assert max(estimates) <= 1.6 * 2_500_000  # bounded by what was tested (1.5 x acked)


@pytest.mark.parametrize("capacity", [2_000_000, 1_000_000, 600_000])
def test_a_bottleneck_drives_the_estimate_to_its_capacity(capacity: int) -> None:
    sim = Simulation(BottleneckLink(capacity))
    sim.run_until(12)
    first_below = sim.time_to(0, lambda e: e <= capacity * 1.05)
    assert first_below is not None and first_below < 2.0
    settled = _window(sim, 4, 12)
    assert 0.45 * capacity <= sum(settled) / len(settled) <= 1.1 * capacity
    assert max(settled) <= 1.25 * capacity


def test_a_drop_is_followed_within_a_second_and_the_estimate_recovers() -> None:
    link = BottleneckLink(3_000_000)
    sim = Simulation(link)
    sim.run_until(8)
    link.capacity_bps = 500_000
    sim.run_until(20)
    reaction = sim.time_to(8, lambda e: e <= 600_000)
    assert reaction is not None and reaction < 1.0
    low = _window(sim, 12, 20)
    assert max(low) < 700_000
    link.capacity_bps = 3_000_000
    sim.run_until(50)
    recovery = sim.time_to(20, lambda e: e >= 2_000_000)
    assert recovery is not None and recovery < 25.0
    assert min(_window(sim, 48, 50)) >= 2_000_000


def test_random_loss_drives_the_estimate_down_and_low_loss_lets_it_grow() -> None:
    link = BottleneckLink(20_000_000, random_loss=0.25)
    sim = Simulation(link, app_bps=4_000_000)
    sim.run_until(5)
    assert sim.estimator.loss.last_loss is not None and sim.estimator.loss.last_loss > 0.15
    assert sim.estimator.estimate < 1_500_000  # x (1 - loss / 2) per 0.5 s window
    link.random_loss = 0.0
    low = sim.estimator.estimate
    sim.run_until(12)
    assert sim.estimator.estimate > 1.3 * low  # +8 %/s


def test_moderate_loss_holds_the_estimate() -> None:
    link = BottleneckLink(20_000_000, random_loss=0.05)
    sim = Simulation(link, app_bps=8_000_000)
    sim.run_until(10)
    assert min(_window(sim, 0, 10)) >= 2_500_000 and sim.estimator.estimate <= 3_500_000


def test_probe_clusters_lift_the_estimate_to_what_the_link_carries() -> None:
    link = BottleneckLink(2_000_000)
    sim = Simulation(link, SendSideEstimator(EstimatorConfig(start_bps=500_000)), app_bps=1_500_000)
    sim.probe = lambda now: 1_500_000 if 1.0 <= now < 1.5 else None
    sim.run_until(3)
    assert sim.estimator.last_probe_bps == pytest.approx(1_500_000, rel=0.1)
    assert sim.estimator.estimate >= 1_300_000
    link2 = BottleneckLink(800_000)
    sim2 = Simulation(link2, SendSideEstimator(EstimatorConfig(start_bps=500_000)), app_bps=3_000_000)
    sim2.probe = lambda now: 3_000_000 if 1.0 <= now < 1.3 else None
    sim2.run_until(3)
    assert sim2.estimator.last_probe_bps is not None
    assert sim2.estimator.last_probe_bps < 850_000  # the bottleneck, not the send rate


def test_remb_is_an_upper_bound_and_the_estimate_without_twcc() -> None:
    est = SendSideEstimator()
    assert est.on_remb(800_000, now=0.0) == 800_000  # no TWCC feedback: REMB is the estimate
    assert est.on_remb(20_000_000, now=1.0) == 10_000_000  # within the bounds
    sim = Simulation(BottleneckLink(20_000_000), est, app_bps=2_000_000)
    sim.run_until(2)
    assert est.on_remb(1_000_000, now=2.0) == 1_000_000  # with TWCC: the lower of the two
    assert est.on_remb(9_000_000, now=2.1) == int(est.rate.estimate)


def test_detector_flags_growing_delay_as_overuse_and_draining_as_underuse() -> None:
    groups = InterArrival()
    detector = TrendlineDetector()
    t = 0.0
    usage: list[Usage] = []
    for i in range(60):  # groups every 10 ms, each arriving 2 ms later than the previous one would
        t += 0.010
        d = groups.add(t, t + 0.05 + i * 0.002)
        if d is not None:
            usage.append(detector.update(*d))
    assert usage[-1] is Usage.OVERUSING
    for i in range(60):
        t += 0.010
        d = groups.add(t, t + 0.17 - i * 0.002)
        if d is not None:
            usage.append(detector.update(*d))
    assert Usage.UNDERUSING in usage[-40:]


def test_empty_feedback_changes_nothing() -> None:
    est = SendSideEstimator()
    assert est.on_feedback([], now=1.0) == 3_000_000
    lost_only = [PacketResult(i, i * 0.01, 1200, False, None) for i in range(5)]
    assert est.on_feedback(lost_only, now=1.0) == 3_000_000
    assert est.feedback_count == 1
