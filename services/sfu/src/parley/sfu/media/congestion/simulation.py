"""A deterministic link model for tests and ``bench/bench_estimator.py``: a sender paced at
``min(estimate, app rate)``, a FIFO bottleneck of a given capacity (tail drop past a queue delay), a
fixed one-way delay, and a receiver that reports arrivals every feedback interval, like TWCC."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from parley.sfu.media.congestion.estimator import SendSideEstimator
from parley.sfu.media.congestion.send_history import SendHistory


class BottleneckLink:
    """Packets leave at ``capacity_bps``; a packet that would wait more than ``queue_limit_s`` is
    dropped, as is a ``random_loss`` fraction."""

    def __init__(
        self,
        capacity_bps: float,
        *,
        delay_s: float = 0.025,
        queue_limit_s: float = 0.3,
        random_loss: float = 0.0,
        seed: int = 1,
    ) -> None:
        self.capacity_bps = capacity_bps
        self.delay_s = delay_s
        self.queue_limit_s = queue_limit_s
        self.random_loss = random_loss
        self._busy_until = 0.0
        self._random = random.Random(seed)

    def send(self, sent_at: float, size: int) -> float | None:
        """The arrival time, or None if the packet is dropped."""
        start = max(sent_at, self._busy_until)
        if start - sent_at > self.queue_limit_s:
            return None
        self._busy_until = start + size * 8 / self.capacity_bps
        if self.random_loss and self._random.random() < self.random_loss:
            return None
        return self._busy_until + self.delay_s


@dataclass
class Sample:
    t: float
    estimate: int
    capacity: float


class Simulation:
    """Run with :meth:`run_until`; ``samples`` holds the estimate at every feedback."""

    def __init__(
        self,
        link: BottleneckLink,
        estimator: SendSideEstimator | None = None,
        *,
        app_bps: float = 5_000_000,
        packet_size: int = 1200,
        feedback_interval_s: float = 0.05,
    ) -> None:
        self.link = link
        self.estimator = estimator or SendSideEstimator()
        self.app_bps = app_bps
        self.packet_size = packet_size
        self.feedback_interval_s = feedback_interval_s
        self.history = SendHistory()
        self.samples: list[Sample] = []
        self.now = 0.0
        self._seq = 0
        self._pending: list[tuple[int, float | None]] = []
        self._next_feedback = feedback_interval_s
        self.packets_sent = 0
        self.probe: Callable[[float], float | None] = lambda _now: None
        """The probe cluster's rate (bit/s) if a packet sent at ``now`` belongs to one, else None."""

    def run_until(self, end: float) -> None:
        while self.now < end:
            probe_bps = self.probe(self.now)
            probing = probe_bps is not None
            rate = min(self.estimator.estimate, self.app_bps)
            if probe_bps is not None:
                rate = max(rate, probe_bps)
            self.now += self.packet_size * 8 / rate
            while self._next_feedback <= self.now:
                self._feedback(self._next_feedback)
                self._next_feedback += self.feedback_interval_s
            self.packets_sent += 1
            seq = self._seq
            self._seq = (seq + 1) & 0xFFFF
            self.history.add(seq, self.now, self.packet_size, probing)
            self._pending.append((seq, self.link.send(self.now, self.packet_size)))

    def _feedback(self, at: float) -> None:
        reported = 0
        for _, arrival in self._pending:
            if arrival is not None and arrival > at:
                break
            reported += 1
        batch, self._pending = self._pending[:reported], self._pending[reported:]
        results = [r for seq, arrival in batch if (r := self.history.result(seq, arrival)) is not None]
        now = at + self.link.delay_s
        estimate = self.estimator.on_feedback(results, now)
        self.samples.append(Sample(now, estimate, self.link.capacity_bps))

    def time_to(self, start: float, predicate: Callable[[int], bool]) -> float | None:
        """Seconds from ``start`` until the first sample whose estimate satisfies ``predicate``."""
        for s in self.samples:
            if s.t >= start and predicate(s.estimate):
                return s.t - start
        return None
