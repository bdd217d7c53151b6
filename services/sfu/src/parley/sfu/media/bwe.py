"""The bandwidth estimate the SFU reports to a publisher: loss-based, with a floor (pure logic).

Why not aiortc's ``RemoteBitrateEstimator`` (REMB from abs-send-time deltas)? Its AIMD rate control
never exceeds ~1.5 x the incoming bitrate. libwebrtc, sending simulcast q/h/f with REMB as its only
receiver feedback (we negotiate goog-remb, not transport-cc), enables the next layer only when its
available bitrate covers it, and never sends more than the enabled layers need: the estimate can only
grow if the publisher sends more, and the publisher only sends more once the estimate grew. A browser
then sat at ~260 kbit/s forever, sending only the quarter layer.

What libwebrtc does with a REMB: it is an upper limit of its send-side estimate (``receiver_limit``).
Its own loss-based controller (``SendSideBandwidthEstimation``: +8 %/s while the loss our receiver
reports say is < 2 %, x(1 - loss/2) above 10 %) moves the actual target below that limit, and during
its first 2 s without loss it jumps straight to the REMB. So the REMB has to leave room, not follow
the incoming rate. This estimator:

- starts at ``start_bps`` (libwebrtc adopts it in its start phase: all layers come up at once);
- once per window, from the loss of every RTP stream of the publisher's peer connection (media, RTX
  and padding alike, by sequence-number gaps, judged over at least ``min_packets`` packets): above
  ``high_loss`` it decreases to ``estimate * (1 - loss / 2)``, below ``low_loss`` it grows by
  ``increase`` per second, in between it holds (GCC's loss controller, draft-ietf-rmcat-gcc §6);
- stays within ``[min_bps, max_bps]``: the floor keeps room for the top simulcast layer even after a
  loss burst; real congestion below the floor is still handled by the publisher, whose own loss
  controller reads the loss in our receiver reports.

There is no delay-based part (no transport-cc): queueing without loss is not detected here.
"""

from __future__ import annotations

from parley.sfu.media.settings import BweSettings

MIN_DECREASE_INTERVAL_S = 0.3
"""At most one loss-based decrease in this interval (libwebrtc: 300 ms + RTT)."""


class LossBasedEstimator:
    """Feed it loss counts with :meth:`update`; read :attr:`estimate` (bit/s)."""

    __slots__ = ("_decreased_at", "_expected", "_last_update", "_lost", "estimate", "last_loss", "settings")

    def __init__(self, settings: BweSettings) -> None:
        self.settings = settings
        self.estimate = settings.start_bps
        self.last_loss: float | None = None
        """The loss fraction of the last judged window (None before the first)."""
        self._expected = 0
        self._lost = 0
        self._last_update: float | None = None
        self._decreased_at = float("-inf")

    def update(self, *, expected: int, lost: int, now: float) -> int:
        """Account a window of ``expected`` packets of which ``lost`` never arrived; returns the
        estimate. Windows are accumulated until they cover ``min_packets``."""
        s = self.settings
        self._expected += max(expected, 0)
        self._lost += min(max(lost, 0), max(expected, 0))
        previous = self._last_update
        if self._expected < s.min_packets:
            return self.estimate
        loss = self._lost / self._expected
        self._expected = self._lost = 0
        self._last_update = now
        self.last_loss = loss
        if loss > s.high_loss:
            if now - self._decreased_at >= MIN_DECREASE_INTERVAL_S:
                self._decreased_at = now
                self.estimate = int(self.estimate * (1 - loss / 2))
        elif loss < s.low_loss and previous is not None:
            elapsed = min(max(now - previous, 0.0), 2.0)
            self.estimate = int(self.estimate * (1 + s.increase) ** elapsed + 1000 * elapsed)
        self.estimate = min(max(self.estimate, s.min_bps), s.max_bps)
        return self.estimate
