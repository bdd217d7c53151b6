"""The send-side bandwidth estimate of one subscriber transport, from transport-wide feedback (GCC in
spirit) or REMB. Pure logic: time is passed in (seconds, our monotonic clock).

``estimate = min(delay-based, loss-based limit, REMB)`` within ``[min_bps, max_bps]``:

- delay-based: inter-group delay variation -> trendline -> overuse detector (``delay_based.py``) ->
  AIMD (``rate_control.py``), with the acknowledged bitrate (``throughput.py``);
- probes: a cluster's rate (min of sent and received) lifts the delay-based estimate and the loss-based
  limit when the link showed no overuse (``ProbeMeasure``);
- loss-based: ``loss_based.py``;
- REMB (receivers that send REMB rather than TWCC feedback): an upper bound; without TWCC feedback
  for ``TWCC_STALE_S`` it is the estimate itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from parley.sfu.media.congestion.config import EstimatorConfig
from parley.sfu.media.congestion.delay_based import InterArrival, TrendlineDetector, Usage
from parley.sfu.media.congestion.loss_based import LossBasedLimit
from parley.sfu.media.congestion.rate_control import AimdRateControl
from parley.sfu.media.congestion.send_history import PacketResult
from parley.sfu.media.congestion.throughput import AckedBitrate, ProbeMeasure

TWCC_STALE_S = 2.0
REMB_STALE_S = 5.0


class SendSideEstimator:
    """Feed :meth:`on_feedback` / :meth:`on_remb`; read :attr:`estimate` (bit/s)."""

    def __init__(self, config: EstimatorConfig | None = None) -> None:
        self.config = config = config or EstimatorConfig()
        self.rate = AimdRateControl(
            start_bps=config.start_bps, min_bps=config.min_bps, max_bps=config.max_bps
        )
        self.detector = TrendlineDetector()
        self.loss = LossBasedLimit()
        self.acked = AckedBitrate()
        self._groups = InterArrival()
        self._probe = ProbeMeasure()
        self._twcc_at = -math.inf
        self._remb: tuple[float, float] | None = None
        self.estimate = config.start_bps
        self.last_probe_bps: float | None = None
        self.feedback_count = 0

    @property
    def usage(self) -> Usage:
        return self.detector.usage

    @property
    def acked_bps(self) -> float | None:
        return self.acked.bitrate()

    def on_feedback(self, results: Iterable[PacketResult], now: float) -> int:
        """The packets one feedback reported, in sequence order; returns the estimate."""
        lost = received = 0
        for r in results:
            self._probe.add(r)
            if r.arrival is None:
                lost += 1
                continue
            received += 1
            self.acked.add(r.arrival, r.size)
            deltas = self._groups.add(r.sent_at, r.arrival)
            if deltas is not None:
                self.detector.update(*deltas)
        if lost + received == 0:
            return self.estimate
        self.feedback_count += 1
        self._twcc_at = now
        acked = self.acked.bitrate()
        probe = self._probe.take()
        if probe is not None:
            self.last_probe_bps = probe
            if self.detector.usage is not Usage.OVERUSING:
                self.rate.raise_to(probe)
                self.loss.raise_to(probe)
        delay_bps = self.rate.update(self.detector.usage, acked, now)
        self.loss.update(
            lost=lost, received=received, estimate=self._combine(now), delay_bps=delay_bps, now=now
        )
        self.estimate = self._combine(now)
        return self.estimate

    def on_remb(self, bps: float, now: float) -> int:
        self._remb = (float(bps), now)
        self.estimate = self._combine(now)
        return self.estimate

    def _combine(self, now: float) -> int:
        c = self.config
        value = self.rate.estimate
        if self.loss.limit is not None:
            value = min(value, self.loss.limit)
        if self._remb is not None and now - self._remb[1] <= REMB_STALE_S:
            remb = self._remb[0]
            value = remb if now - self._twcc_at > TWCC_STALE_S else min(value, remb)
        return int(min(max(value, c.min_bps), c.max_bps))
