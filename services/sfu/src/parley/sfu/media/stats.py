"""Process-wide media counters for the node's load report (NodeStats)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MediaRates:
    """Per-second rates since the previous ``MediaStats.rates()`` call, plus current gauges."""

    packets_in_per_s: float
    packets_out_per_s: float
    bytes_in_per_s: float
    bytes_out_per_s: float
    tracks_in: int
    tracks_out: int
    errors: int


class MediaStats:
    """Plain counters bumped on the (synchronous) packet path; read by the session layer."""

    __slots__ = (
        "_last",
        "bytes_in",
        "bytes_out",
        "errors",
        "nacks_answered",
        "packets_dropped",
        "packets_in",
        "packets_out",
        "plis_sent",
        "tracks_in",
        "tracks_out",
    )

    def __init__(self) -> None:
        self.packets_in = 0
        self.packets_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.packets_dropped = 0
        self.nacks_answered = 0
        self.plis_sent = 0
        self.errors = 0
        self.tracks_in = 0
        self.tracks_out = 0
        self._last: tuple[float, int, int, int, int] = (time.monotonic(), 0, 0, 0, 0)

    def rates(self) -> MediaRates:
        """Rates over the interval since the last call (the first call measures since start)."""
        now = time.monotonic()
        t0, p_in, p_out, b_in, b_out = self._last
        elapsed = max(now - t0, 1e-6)
        self._last = (now, self.packets_in, self.packets_out, self.bytes_in, self.bytes_out)
        return MediaRates(
            packets_in_per_s=(self.packets_in - p_in) / elapsed,
            packets_out_per_s=(self.packets_out - p_out) / elapsed,
            bytes_in_per_s=(self.bytes_in - b_in) / elapsed,
            bytes_out_per_s=(self.bytes_out - b_out) / elapsed,
            tracks_in=self.tracks_in,
            tracks_out=self.tracks_out,
            errors=self.errors,
        )


STATS = MediaStats()
"""The process-wide counters."""
