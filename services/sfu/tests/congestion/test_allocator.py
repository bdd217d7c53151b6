"""Stream allocation with fake Allocatables (layer costs 150k / 500k / 1.5M unless told)."""

from __future__ import annotations

import pytest

from parley.sfu.media.congestion.allocator import StreamAllocator, plan, priority
from parley.sfu.media.congestion.config import AllocatorConfig
from parley.sfu.media.congestion.fakes import FakeAllocatable
from parley.sfu.media.interfaces import NO_LAYER, LayerBitrate

pytestmark = pytest.mark.unit

SIMULCAST = [150_000, 500_000, 1_500_000]


def _cam(sid: str, pixels: int = 640 * 360, **kw: object) -> FakeAllocatable:
    return FakeAllocatable(sid, SIMULCAST, pixels=pixels, **kw)  # type: ignore[arg-type]


def test_priority_is_screen_share_then_bigger_views() -> None:
    small, big = _cam("b", 320 * 180), _cam("a", 1280 * 720)
    screen = FakeAllocatable("z", SIMULCAST, screen_share=True)
    assert [t.track_sid for t in priority([small, big, screen])] == ["z", "a", "b"]


def test_plan_gives_everyone_the_lowest_layer_then_upgrades_in_priority_order() -> None:
    layers = [LayerBitrate(i, bps) for i, bps in enumerate(SIMULCAST)]
    assert plan([(2, layers), (2, layers)], 5_000_000) == [2, 2]
    assert plan([(2, layers), (2, layers)], 1_700_000) == [2, 0]  # 1.5M + 150k
    assert plan([(2, layers), (2, layers)], 1_000_000) == [1, 1]
    assert plan([(2, layers), (2, layers)], 200_000) == [0, NO_LAYER]
    assert plan([(1, layers[:2]), (NO_LAYER, [])], 5_000_000) == [1, NO_LAYER]
    assert plan([(2, []), (2, layers)], 100_000) == [2, NO_LAYER]  # unmeasured: optimistic, free


def test_first_allocation_applies_at_once_and_set_allocation_only_on_change() -> None:
    alloc = StreamAllocator()
    a, b = _cam("a", 1280 * 720), _cam("b")
    result = alloc.allocate([a, b], estimate_bps=3_000_000, audio_bps=50_000, now=0.0)
    assert result.layers == {"a": 2, "b": 1} and a.allocations == [2] and b.allocations == [1]
    assert result.committed_bps == 50_000 + 1_500_000 + 500_000
    alloc.allocate([a, b], estimate_bps=3_000_000, audio_bps=50_000, now=0.2)
    assert a.allocations == [2] and b.allocations == [1]
    assert result.deficient == ["b"]


def test_downgrades_at_once_and_pauses_what_does_not_fit() -> None:
    alloc = StreamAllocator()
    a, b = _cam("a", 1280 * 720), _cam("b")
    alloc.allocate([a, b], estimate_bps=5_000_000, audio_bps=0, now=0.0)
    assert (a.allocated, b.allocated) == (2, 2)
    alloc.allocate([a, b], estimate_bps=700_000, audio_bps=0, now=0.2)
    assert (a.allocated, b.allocated) == (1, 0)
    result = alloc.allocate([a, b], estimate_bps=200_000, audio_bps=0, now=0.4)
    assert (a.allocated, b.allocated) == (0, NO_LAYER)
    assert result.deficient == ["a", "b"]


def test_upgrades_need_the_margin_for_the_hold_time() -> None:
    alloc = StreamAllocator(AllocatorConfig(upgrade_margin=0.1, upgrade_hold_s=1.0))
    a = _cam("a")
    alloc.allocate([a], estimate_bps=600_000, audio_bps=0, now=0.0)
    assert a.allocated == 1
    # 1.5M fits 1.6M, but not with a 10 % margin: no upgrade, however long
    for i in range(10):
        alloc.allocate([a], estimate_bps=1_600_000, audio_bps=0, now=0.2 * (i + 1))
    assert a.allocations == [1]
    # with the margin: only after 1 s, and a dip resets the hold
    alloc.allocate([a], estimate_bps=1_700_000, audio_bps=0, now=3.0)
    alloc.allocate([a], estimate_bps=1_700_000, audio_bps=0, now=3.6)
    alloc.allocate([a], estimate_bps=1_600_000, audio_bps=0, now=3.8)
    alloc.allocate([a], estimate_bps=1_700_000, audio_bps=0, now=4.0)
    alloc.allocate([a], estimate_bps=1_700_000, audio_bps=0, now=4.8)
    assert a.allocations == [1]
    alloc.allocate([a], estimate_bps=1_700_000, audio_bps=0, now=5.0)
    assert a.allocations == [1, 2]


def test_no_flapping_when_the_estimate_hovers_around_a_layer() -> None:
    alloc = StreamAllocator()
    a = _cam("a")
    estimates = [1_450_000, 1_550_000, 1_520_000, 1_480_000, 1_600_000, 1_490_000] * 10
    for i, estimate in enumerate(estimates):
        alloc.allocate([a], estimate_bps=estimate, audio_bps=0, now=0.2 * i)
    assert a.allocations == [1]


def test_requested_limits_and_unmeasured_tracks() -> None:
    alloc = StreamAllocator()
    low = _cam("low", requested=0)
    off = _cam("off", requested=NO_LAYER)
    fresh = FakeAllocatable("fresh", [], requested=1)
    result = alloc.allocate([low, off, fresh], estimate_bps=10_000_000, audio_bps=0, now=0.0)
    assert result.layers == {"low": 0, "off": NO_LAYER, "fresh": 1}
    assert result.deficient == [] and result.probe_goal_bps is None
    fresh.requested_max_spatial = 2  # a new request for an unmeasured track needs no hold
    alloc.allocate([low, off, fresh], estimate_bps=10_000_000, audio_bps=0, now=0.2)
    assert fresh.allocations == [1, 2]


def test_probe_goal_is_what_lifts_the_first_deficient_track_one_layer() -> None:
    alloc = StreamAllocator(AllocatorConfig(upgrade_margin=0.1))
    screen = FakeAllocatable("s", SIMULCAST, screen_share=True)
    cam = _cam("c")
    result = alloc.allocate([cam, screen], estimate_bps=1_000_000, audio_bps=100_000, now=0.0)
    assert result.layers == {"s": 1, "c": 0}
    assert result.deficient == ["s", "c"]
    # audio + cam q + screen's next layer (f), with the margin
    assert result.probe_goal_bps == pytest.approx((100_000 + 150_000 + 1_500_000) * 1.1)


def test_a_track_that_left_is_forgotten() -> None:
    alloc = StreamAllocator()
    a = _cam("a")
    alloc.allocate([a], estimate_bps=5_000_000, audio_bps=0, now=0.0)
    alloc.allocate([], estimate_bps=5_000_000, audio_bps=0, now=0.2)
    alloc.allocate([a], estimate_bps=700_000, audio_bps=0, now=0.4)
    assert a.allocations == [2, 1]
