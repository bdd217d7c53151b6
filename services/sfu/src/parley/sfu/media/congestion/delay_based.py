"""Delay-based congestion detection (draft-ietf-rmcat-gcc §5, as libwebrtc's trendline estimator does it):
packet groups, inter-group delay variation, a trendline over the accumulated delay, and an overuse
detector with an adaptive threshold. Pure logic; times in seconds, delays in milliseconds.
"""

from __future__ import annotations

import enum
from collections import deque

GROUP_SPAN_S = 0.005
"""Packets sent within 5 ms of a group's first packet belong to that group (one burst)."""
WINDOW = 20
"""Groups in the trendline regression."""
SMOOTHING = 0.9
GAIN = 4.0
MAX_DELTAS = 60
OVERUSE_TIME_MS = 10.0
THRESHOLD_START_MS = 12.5
THRESHOLD_MIN_MS, THRESHOLD_MAX_MS = 6.0, 600.0
K_UP, K_DOWN = 0.0087, 0.039
MAX_ADAPT_STEP_MS = 100.0


class Usage(enum.Enum):
    NORMAL = "normal"
    UNDERUSING = "underusing"
    OVERUSING = "overusing"


class InterArrival:
    """Groups packets by send time; yields (send delta, arrival delta, arrival) between completed
    groups, each group represented by its last packet."""

    __slots__ = ("_first_send", "_last_arrival", "_last_send", "_prev")

    def __init__(self) -> None:
        self._first_send: float | None = None
        self._last_send = 0.0
        self._last_arrival = 0.0
        self._prev: tuple[float, float] | None = None

    def add(self, sent_at: float, arrival: float) -> tuple[float, float, float] | None:
        first = self._first_send
        if first is None:
            self._first_send, self._last_send, self._last_arrival = sent_at, sent_at, arrival
            return None
        if sent_at < first:  # reordered across groups: ignore
            return None
        if sent_at - first <= GROUP_SPAN_S:
            self._last_send = max(self._last_send, sent_at)
            self._last_arrival = max(self._last_arrival, arrival)
            return None
        done = (self._last_send, self._last_arrival)
        prev, self._prev = self._prev, done
        self._first_send, self._last_send, self._last_arrival = sent_at, sent_at, arrival
        if prev is None:
            return None
        return done[0] - prev[0], done[1] - prev[1], done[1]


class TrendlineDetector:
    """Feed group deltas with :meth:`update`; :attr:`usage` is the hypothesis."""

    __slots__ = (
        "_accumulated",
        "_first_arrival",
        "_history",
        "_last_threshold_update",
        "_num_deltas",
        "_overuse_count",
        "_overuse_ms",
        "_prev_trend",
        "_smoothed",
        "threshold_ms",
        "trend",
        "usage",
    )

    def __init__(self) -> None:
        self._history: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._first_arrival: float | None = None
        self._num_deltas = 0
        self._overuse_ms = -1.0
        self._overuse_count = 0
        self._prev_trend = 0.0
        self._last_threshold_update: float | None = None
        self.threshold_ms = THRESHOLD_START_MS
        self.trend = 0.0
        self.usage = Usage.NORMAL

    def update(self, send_delta: float, arrival_delta: float, arrival: float) -> Usage:
        delay_ms = (arrival_delta - send_delta) * 1000.0
        self._num_deltas = min(self._num_deltas + 1, 1000)
        if self._first_arrival is None:
            self._first_arrival = arrival
        self._accumulated += delay_ms
        self._smoothed = SMOOTHING * self._smoothed + (1 - SMOOTHING) * self._accumulated
        self._history.append(((arrival - self._first_arrival) * 1000.0, self._smoothed))
        if len(self._history) == WINDOW:
            self.trend = _slope(self._history)
        self._detect(send_delta * 1000.0, arrival)
        return self.usage

    def _detect(self, send_delta_ms: float, now: float) -> None:
        modified = min(self._num_deltas, MAX_DELTAS) * self.trend * GAIN
        if modified > self.threshold_ms:
            if self._overuse_ms < 0:
                self._overuse_ms = send_delta_ms / 2
            else:
                self._overuse_ms += send_delta_ms
            self._overuse_count += 1
            if (
                self._overuse_ms > OVERUSE_TIME_MS
                and self._overuse_count > 1
                and self.trend >= self._prev_trend
            ):
                self._overuse_ms = 0.0
                self._overuse_count = 0
                self.usage = Usage.OVERUSING
        elif modified < -self.threshold_ms:
            self._overuse_ms = -1.0
            self._overuse_count = 0
            self.usage = Usage.UNDERUSING
        else:
            self._overuse_ms = -1.0
            self._overuse_count = 0
            self.usage = Usage.NORMAL
        self._prev_trend = self.trend
        self._adapt_threshold(modified, now)

    def _adapt_threshold(self, modified: float, now: float) -> None:
        last, self._last_threshold_update = self._last_threshold_update, now
        if last is None or abs(modified) > self.threshold_ms + 15.0:  # a spike: do not adapt to it
            return
        k = K_DOWN if abs(modified) < self.threshold_ms else K_UP
        elapsed_ms = min((now - last) * 1000.0, MAX_ADAPT_STEP_MS)
        self.threshold_ms += k * (abs(modified) - self.threshold_ms) * elapsed_ms
        self.threshold_ms = min(max(self.threshold_ms, THRESHOLD_MIN_MS), THRESHOLD_MAX_MS)


def _slope(points: deque[tuple[float, float]]) -> float:
    n = len(points)
    mean_x = sum(p[0] for p in points) / n
    mean_y = sum(p[1] for p in points) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den if den else 0.0
