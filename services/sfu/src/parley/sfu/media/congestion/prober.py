"""When to probe the subscriber's link, and how much padding to add (pure logic).

When the allocator has a deficient track and the estimate does not cover its next layer (a probe goal),
the prober starts a cluster: for ``cluster_s`` it asks for padding so that media plus padding reach
the goal (capped at ``max_step`` x the estimate, so a large gap is climbed in steps). Packets sent
during a cluster are marked as probes in the send history; the estimator measures what the cluster got
through and raises its estimate when the link carried it. ``settle_s`` after the cluster the prober
judges it: the estimate reached ``success_ratio`` of the goal -> the next cluster may follow after
``min_interval_s``; else the interval doubles (up to ``max_interval_s``). Nothing deficient -> no
probing, and the back-off resets.
"""

from __future__ import annotations

import enum
import math

from parley.sfu.media.congestion.config import ProberConfig


class ProbeState(enum.Enum):
    IDLE = "idle"
    PROBING = "probing"
    SETTLING = "settling"


class Prober:
    """Call :meth:`update` every tick; while :attr:`probing`, :meth:`padding_bytes` paces padding."""

    def __init__(self, config: ProberConfig | None = None) -> None:
        self.config = config or ProberConfig()
        self.state = ProbeState.IDLE
        self.goal_bps = 0.0
        self.clusters = 0
        self.successes = 0
        self._interval = self.config.min_interval_s
        self._next_at = -math.inf
        self._ends_at = 0.0
        self._padded_at = 0.0
        self._carry = 0.0

    @property
    def probing(self) -> bool:
        return self.state is ProbeState.PROBING

    def update(self, now: float, *, goal_bps: float | None, estimate_bps: float) -> None:
        c = self.config
        if self.state is ProbeState.PROBING and now >= self._ends_at:
            self.state = ProbeState.SETTLING
        if self.state is ProbeState.SETTLING and now >= self._ends_at + c.settle_s:
            if estimate_bps >= c.success_ratio * self.goal_bps:
                self.successes += 1
                self._interval = c.min_interval_s
            else:
                self._interval = min(self._interval * 2, c.max_interval_s)
            self._next_at = now + self._interval
            self.state = ProbeState.IDLE
        if self.state is not ProbeState.IDLE:
            return
        if goal_bps is None or goal_bps <= estimate_bps:
            if goal_bps is None:
                self._interval = c.min_interval_s
            return
        if now < self._next_at:
            return
        self.goal_bps = min(goal_bps, estimate_bps * c.max_step)
        self.state = ProbeState.PROBING
        self.clusters += 1
        self._ends_at = now + c.cluster_s
        self._padded_at = now
        self._carry = 0.0

    def padding_bytes(self, now: float, sending_bps: float) -> int:
        """Padding due since the previous call, so that ``sending_bps`` of media plus padding reach
        the goal (0 when not probing)."""
        if self.state is not ProbeState.PROBING:
            return 0
        elapsed = max(min(now, self._ends_at) - self._padded_at, 0.0)
        self._padded_at = now
        self._carry += max(self.goal_bps - sending_bps, 0.0) * elapsed / 8
        due = int(self._carry)
        self._carry -= due
        return due
