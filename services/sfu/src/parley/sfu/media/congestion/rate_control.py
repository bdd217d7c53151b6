"""AIMD rate control of the delay-based estimate (draft-ietf-rmcat-gcc §5.5, libwebrtc's
AimdRateControl in spirit). Pure logic; rates in bit/s, times in seconds.

- overuse: decrease to ``BETA`` x the acknowledged bitrate (at most once per ``DECREASE_INTERVAL_S``
  unless throughput collapsed), and remember that rate as the link capacity;
- underuse: hold (the queues drain);
- normal: increase, multiplicatively (8 %/s) far from the known link capacity, additively (about one
  packet per response time) near it; never beyond 1.5 x the acknowledged bitrate, so an application-
  limited sender does not inflate the estimate it never tested.
"""

from __future__ import annotations

import math

from parley.sfu.media.congestion.delay_based import Usage

BETA = 0.85
MULTIPLICATIVE_PER_S = 0.08
DECREASE_INTERVAL_S = 0.2
RESPONSE_TIME_S = 0.2
"""An assumed RTT (100 ms) plus 100 ms, for the additive increase."""
PACKET_BITS = 1200 * 8
MIN_ADDITIVE_BPS_PER_S = 4_000
MAX_ACKED_RATIO = 1.5


class LinkCapacity:
    """Running mean and deviation of the acknowledged bitrate at overuse (bit/s)."""

    __slots__ = ("mean", "var")

    def __init__(self) -> None:
        self.mean: float | None = None
        self.var = 0.4

    def observe(self, bps: float) -> None:
        kbps = bps / 1000
        if self.mean is None:
            self.mean = kbps
            return
        self.mean = 0.95 * self.mean + 0.05 * kbps
        norm = max(self.mean, 1.0)
        self.var = 0.95 * self.var + 0.05 * (self.mean - kbps) ** 2 / norm
        self.var = min(max(self.var, 0.4), 2.5)

    def upper_bps(self) -> float:
        if self.mean is None:
            return math.inf
        return (self.mean + 3 * math.sqrt(self.var * self.mean)) * 1000

    def lower_bps(self) -> float:
        if self.mean is None:
            return 0.0
        return max(self.mean - 3 * math.sqrt(self.var * self.mean), 0.0) * 1000

    def reset(self) -> None:
        self.mean = None


class AimdRateControl:
    __slots__ = ("_decreased_at", "_increasing", "_last_update", "capacity", "estimate", "max_bps", "min_bps")

    def __init__(self, *, start_bps: int, min_bps: int, max_bps: int) -> None:
        self.estimate = float(start_bps)
        self.min_bps = min_bps
        self.max_bps = max_bps
        self.capacity = LinkCapacity()
        self._increasing = False
        self._last_update: float | None = None
        self._decreased_at = -math.inf

    def update(self, usage: Usage, acked_bps: float | None, now: float) -> float:
        """Apply the detector's hypothesis at ``now``; returns the estimate."""
        elapsed = 0.0 if self._last_update is None else min(max(now - self._last_update, 0.0), 1.0)
        self._last_update = now
        if acked_bps is not None and acked_bps > self.capacity.upper_bps():
            self.capacity.reset()  # the link got faster than we knew
        if usage is Usage.OVERUSING:
            self._increasing = False
            self._decrease(acked_bps, now)
        elif usage is Usage.UNDERUSING:
            self._increasing = False
        elif self._increasing:
            self._increase(acked_bps, elapsed)
        else:
            self._increasing = True  # from hold: increase from the next update on
        self.estimate = min(max(self.estimate, self.min_bps), self.max_bps)
        return self.estimate

    def raise_to(self, bps: float) -> None:
        """A probe showed the link carries ``bps``."""
        if bps > self.estimate:
            self.estimate = min(bps, self.max_bps)
            self.capacity.reset()

    def _decrease(self, acked_bps: float | None, now: float) -> None:
        collapsed = acked_bps is not None and acked_bps < 0.5 * self.estimate
        if now - self._decreased_at < DECREASE_INTERVAL_S and not collapsed:
            return
        self._decreased_at = now
        if acked_bps is None:
            self.estimate *= BETA
            return
        if acked_bps < self.capacity.lower_bps():
            self.capacity.reset()  # a much lower capacity than we knew: start over
        self.capacity.observe(acked_bps)
        self.estimate = min(self.estimate, BETA * acked_bps)

    def _increase(self, acked_bps: float | None, elapsed: float) -> None:
        if self.capacity.mean is not None:
            frame_bits = self.estimate / 30
            packets = max(math.ceil(frame_bits / PACKET_BITS), 1)
            rate = max(frame_bits / packets / RESPONSE_TIME_S, MIN_ADDITIVE_BPS_PER_S)
            target = self.estimate + rate * elapsed
        else:
            target = self.estimate * (1 + MULTIPLICATIVE_PER_S) ** elapsed + 1000 * elapsed
        if acked_bps is not None:
            target = min(target, max(self.estimate, MAX_ACKED_RATIO * acked_bps + 10_000))
        self.estimate = max(self.estimate, target)
