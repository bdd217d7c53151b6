"""Knobs of subscriber congestion control (estimator bounds, allocator hysteresis, probing)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EstimatorConfig:
    """Bounds of the send-side estimate of one subscriber transport (bit/s)."""

    start_bps: int = 3_000_000
    """Optimistic: a 720p simulcast's top layer (~1.7-2.5 Mbit/s) flows at once on a clean link."""
    min_bps: int = 100_000
    max_bps: int = 10_000_000

    def __post_init__(self) -> None:
        if not 0 < self.min_bps <= self.start_bps <= self.max_bps:
            raise ValueError("need 0 < min_bps <= start_bps <= max_bps")


@dataclass(frozen=True, slots=True)
class AllocatorConfig:
    upgrade_margin: float = 0.10
    """An upgrade needs the estimate to exceed what it costs by this fraction."""
    upgrade_hold_s: float = 1.0
    """... continuously for this long. Downgrades are immediate."""
    audio_bps: int = 50_000
    """Reserved per audio track whose bitrate is not measured yet."""


@dataclass(frozen=True, slots=True)
class ProberConfig:
    cluster_s: float = 0.6
    """How long one probe cluster sends padding."""
    settle_s: float = 0.6
    """After a cluster, how long to wait for its feedback before judging the estimate."""
    min_interval_s: float = 0.5
    """Between clusters after a success."""
    max_interval_s: float = 16.0
    """Back-off cap after failures (the interval doubles per failure)."""
    max_step: float = 1.5
    """A cluster targets at most this multiple of the current estimate."""
    success_ratio: float = 0.9
    """A cluster succeeded when the estimate reached this fraction of its goal."""


@dataclass(frozen=True, slots=True)
class CongestionConfig:
    estimator: EstimatorConfig = EstimatorConfig()
    allocator: AllocatorConfig = AllocatorConfig()
    prober: ProberConfig = ProberConfig()
    tick_s: float = 0.2
    """Allocation and probe decisions."""
    probe_tick_s: float = 0.02
    """Padding pacing while a cluster runs."""
    padding_size: int = 255
    """Padding bytes per probe packet (RTP padding length is one byte)."""
