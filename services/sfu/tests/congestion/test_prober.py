"""Probe decisions (pure logic)."""

from __future__ import annotations

import itertools

import pytest

from parley.sfu.media.congestion.config import ProberConfig
from parley.sfu.media.congestion.prober import Prober, ProbeState

pytestmark = pytest.mark.unit

CONFIG = ProberConfig(cluster_s=0.6, settle_s=0.6, min_interval_s=0.5, max_interval_s=4.0, max_step=1.5)


def test_no_probe_without_a_goal_or_when_the_estimate_covers_it() -> None:
    prober = Prober(CONFIG)
    prober.update(0.0, goal_bps=None, estimate_bps=1_000_000)
    prober.update(0.2, goal_bps=900_000, estimate_bps=1_000_000)
    assert prober.state is ProbeState.IDLE and prober.padding_bytes(0.4, 0.0) == 0


def test_a_cluster_pads_up_to_the_goal_for_its_duration() -> None:
    prober = Prober(CONFIG)
    prober.update(0.0, goal_bps=1_200_000, estimate_bps=1_000_000)
    assert prober.probing and prober.goal_bps == 1_200_000
    padded = sum(prober.padding_bytes(0.02 * i, sending_bps=800_000) for i in range(1, 40))
    # (1.2M - 0.8M) bit/s for the 0.6 s cluster = 30 kB; nothing after its end
    assert padded == pytest.approx(30_000, abs=2)
    prober.update(0.6, goal_bps=1_200_000, estimate_bps=1_000_000)
    assert prober.state is ProbeState.SETTLING and prober.padding_bytes(0.8, 0.0) == 0


def test_goal_is_capped_to_a_step_above_the_estimate() -> None:
    prober = Prober(CONFIG)
    prober.update(0.0, goal_bps=5_000_000, estimate_bps=1_000_000)
    assert prober.goal_bps == 1_500_000


def test_success_probes_again_soon_failure_backs_off() -> None:
    prober = Prober(CONFIG)
    prober.update(0.0, goal_bps=2_000_000, estimate_bps=1_000_000)  # goal 1.5M
    prober.update(1.2, goal_bps=2_000_000, estimate_bps=1_400_000)  # judged: success
    assert prober.successes == 1 and prober.state is ProbeState.IDLE
    prober.update(1.7, goal_bps=2_000_000, estimate_bps=1_400_000)
    assert prober.probing and prober.clusters == 2  # after min_interval
    starts = [1.7]
    now = 1.7
    while now < 30:
        now = round(now + 0.1, 3)
        was = prober.clusters
        prober.update(now, goal_bps=3_000_000, estimate_bps=1_400_000)  # the estimate never moves
        if prober.clusters != was:
            starts.append(now)
    gaps = [round(b - a - CONFIG.cluster_s - CONFIG.settle_s, 1) for a, b in itertools.pairwise(starts)]
    assert gaps[:4] == [1.0, 2.0, 4.0, 4.0]  # doubling, capped


def test_nothing_deficient_resets_the_back_off() -> None:
    prober = Prober(CONFIG)
    prober.update(0.0, goal_bps=2_000_000, estimate_bps=1_000_000)
    prober.update(1.2, goal_bps=2_000_000, estimate_bps=1_000_000)  # failure: next in 1 s
    prober.update(1.4, goal_bps=None, estimate_bps=1_000_000)
    prober.update(1.5, goal_bps=2_000_000, estimate_bps=1_000_000)
    assert not prober.probing  # the scheduled time still holds
    prober.update(2.2, goal_bps=2_000_000, estimate_bps=1_000_000)
    assert prober.probing
