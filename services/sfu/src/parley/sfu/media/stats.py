"""Media counters of one media context: the node's load report (NodeStats) and its Prometheus
metrics (``parley.sfu.metrics``) read them. Plain ints bumped on the synchronous packet path."""

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
        "bytes_in_rtx",
        "bytes_out",
        "bytes_out_rtx",
        "errors",
        "nacks_answered",
        "nacks_received",
        "nacks_sent",
        "packets_dropped",
        "packets_in",
        "packets_in_rtx",
        "packets_lost_in",
        "packets_lost_out",
        "packets_out",
        "packets_out_rtx",
        "plis_received",
        "plis_sent",
        "tracks_in",
        "tracks_out",
    )

    def __init__(self) -> None:
        self.packets_in = 0
        """RTP packets received from publishers (RTX included)."""
        self.packets_out = 0
        """RTP packets sent to subscribers (retransmissions and probe padding included)."""
        self.bytes_in = 0
        self.bytes_out = 0
        self.packets_in_rtx = 0
        """Of ``packets_in``: RTX packets (retransmissions and probe padding)."""
        self.bytes_in_rtx = 0
        self.packets_out_rtx = 0
        """Of ``packets_out``: retransmissions answering a subscriber's NACK."""
        self.bytes_out_rtx = 0
        self.packets_dropped = 0
        self.packets_lost_in = 0
        """Publisher packets that never arrived (sequence gaps, per feedback window)."""
        self.packets_lost_out = 0
        """Packets subscribers reported lost (cumulative loss in their receiver reports)."""
        self.nacks_sent = 0
        """NACK packets sent to publishers."""
        self.nacks_received = 0
        """NACK packets received from subscribers."""
        self.nacks_answered = 0
        """Packets retransmitted for subscribers' NACKs."""
        self.plis_sent = 0
        """PLIs sent to publishers."""
        self.plis_received = 0
        """PLIs/FIRs received from subscribers."""
        self.errors = 0
        """Exceptions caught on the media path (``guard.ErrorGuard``)."""
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
