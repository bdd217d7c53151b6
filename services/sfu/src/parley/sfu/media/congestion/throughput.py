"""What the feedback says got through: the acknowledged bitrate, and the rate a probe cluster reached.
Pure logic; arrival times are the receiver's clock (seconds), only their differences matter."""

from __future__ import annotations

from collections import deque

from parley.sfu.media.congestion.send_history import PacketResult

ACKED_WINDOW_S = 0.5
MIN_PROBE_PACKETS = 5
MIN_PROBE_SPAN_S = 0.01
SATURATED_RATIO = 0.9
"""A probe received at less than this fraction of its send rate found the bottleneck."""


class AckedBitrate:
    """Bits received per second over the last ``ACKED_WINDOW_S`` of arrivals."""

    __slots__ = ("_bytes", "_first", "_latest", "_packets", "_window")

    def __init__(self, window_s: float = ACKED_WINDOW_S) -> None:
        self._window = window_s
        self._packets: deque[tuple[float, int]] = deque()
        self._bytes = 0
        self._first: float | None = None
        self._latest = 0.0

    def add(self, arrival: float, size: int) -> None:
        if self._first is None:
            self._first = self._latest = arrival
        self._latest = max(self._latest, arrival)
        self._packets.append((arrival, size))
        self._bytes += size
        while self._packets and self._packets[0][0] < self._latest - self._window:
            self._bytes -= self._packets.popleft()[1]

    def bitrate(self) -> float | None:
        """None until arrivals covered one window."""
        if self._first is None or not self._packets:
            return None
        if self._latest - self._first < self._window:
            return None
        return self._bytes * 8 / self._window


class ProbeMeasure:
    """Collects the results of packets sent during a probe cluster; when a packet sent after the
    cluster is reported, :meth:`take` returns what the cluster showed the link carries."""

    __slots__ = ("_done", "_results")

    def __init__(self) -> None:
        self._results: list[PacketResult] = []
        self._done: float | None = None

    def add(self, result: PacketResult) -> None:
        if result.probe:
            if result.arrival is not None:
                self._results.append(result)
            return
        if self._results:
            self._done = _cluster_rate(self._results)
            self._results = []

    def take(self) -> float | None:
        done, self._done = self._done, None
        return done


def _cluster_rate(results: list[PacketResult]) -> float | None:
    if len(results) < MIN_PROBE_PACKETS:
        return None
    by_send = sorted(results, key=lambda r: r.sent_at)
    by_arrival = sorted(results, key=lambda r: r.arrival or 0.0)
    send_span = by_send[-1].sent_at - by_send[0].sent_at
    arrival_span = (by_arrival[-1].arrival or 0.0) - (by_arrival[0].arrival or 0.0)
    if send_span < MIN_PROBE_SPAN_S or arrival_span < MIN_PROBE_SPAN_S:
        return None
    total = sum(r.size for r in results)
    send_bps = (total - by_send[-1].size) * 8 / send_span
    receive_bps = (total - by_arrival[0].size) * 8 / arrival_span
    if receive_bps < SATURATED_RATIO * send_bps:
        return 0.95 * receive_bps
    return min(send_bps, receive_bps)
