"""The loss-based limit of the send-side estimate (draft-ietf-rmcat-gcc §6, libwebrtc's
SendSideBandwidthEstimation in spirit). Pure logic.

Loss is judged over windows of at least ``MIN_WINDOW_S`` and ``MIN_PACKETS`` reported packets (a
shorter window makes 5 % random loss look like 10 % too often). Above 10 % the limit drops to
``estimate x (1 - loss / 2)`` (at most once per ``DECREASE_INTERVAL_S``); between 2 % and 10 % it
holds the current estimate (no increase); below 2 % it grows by 8 %/s and disappears once it no
longer limits the delay-based estimate.
"""

from __future__ import annotations

import math

LOW_LOSS = 0.02
HIGH_LOSS = 0.10
MIN_PACKETS = 20
MIN_WINDOW_S = 0.5
INCREASE_PER_S = 0.08
DECREASE_INTERVAL_S = 0.3


class LossBasedLimit:
    __slots__ = ("_decreased_at", "_last_judged", "_lost", "_received", "_window_start", "last_loss", "limit")

    def __init__(self) -> None:
        self.limit: float | None = None
        """None: loss does not limit the estimate."""
        self.last_loss: float | None = None
        self._lost = 0
        self._received = 0
        self._last_judged: float | None = None
        self._window_start: float | None = None
        self._decreased_at = -math.inf

    def update(self, *, lost: int, received: int, estimate: float, delay_bps: float, now: float) -> None:
        """Account one feedback's packets; ``estimate`` is the current combined estimate,
        ``delay_bps`` the delay-based one."""
        self._lost += lost
        self._received += received
        if self._window_start is None:
            self._window_start = now
        total = self._lost + self._received
        if total < MIN_PACKETS or now - self._window_start < MIN_WINDOW_S:
            return
        self._window_start = now
        loss = self._lost / total
        self._lost = self._received = 0
        previous, self._last_judged = self._last_judged, now
        self.last_loss = loss
        if loss > HIGH_LOSS:
            if now - self._decreased_at >= DECREASE_INTERVAL_S:
                self._decreased_at = now
                base = estimate if self.limit is None else min(self.limit, estimate)
                self.limit = base * (1 - loss / 2)
        elif loss >= LOW_LOSS:
            if self.limit is None:
                self.limit = estimate
        elif self.limit is not None and previous is not None:
            elapsed = min(max(now - previous, 0.0), 1.0)
            self.limit = self.limit * (1 + INCREASE_PER_S) ** elapsed + 1000 * elapsed
            if self.limit >= delay_bps:
                self.limit = None

    def raise_to(self, bps: float) -> None:
        """A probe showed the link carries ``bps`` (without loss worth a decrease)."""
        if self.limit is not None and bps > self.limit:
            self.limit = bps
