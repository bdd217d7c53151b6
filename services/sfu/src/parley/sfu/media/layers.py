"""Simulcast layers of a published track and which one a subscriber should get."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from parley.sfu.media.packet_cache import PacketCache
from parley.sfu.media.sender_report import PublisherSr

ACTIVE_FOR_S = 1.0
"""A layer without packets for this long is no longer a forwarding candidate."""
METER_WINDOW_S = 0.5
"""A layer's bitrate is measured over windows of this length (and smoothed across two)."""
_RANK = {"q": 0, "l": 0, "h": 1, "m": 1, "f": 2, "": 2}


def layer_rank(rid: str) -> int:
    """Quality order of a rid: q < h < f (LiveKit), numbers ascending, no rid = the only layer."""
    if rid in _RANK:
        return _RANK[rid]
    if rid.isdigit():
        return int(rid)
    return 1


class Layer:
    """One received RTP stream (an SSRC; a simulcast layer when ``rid`` is set).

    ``rank`` is the spatial layer (0 = LOW ``q`` .. 2 = HIGH ``f``; a track without simulcast has one
    layer, HIGH), the numbering of LiveKit's ``VideoQuality`` and of ``media/interfaces.py``."""

    __slots__ = (
        "_meter_at",
        "_meter_octets",
        "bps",
        "cache",
        "keyframes",
        "last_seen",
        "octets",
        "packets",
        "rank",
        "rid",
        "sr",
        "ssrc",
    )

    def __init__(self, rid: str, ssrc: int, cache_size: int) -> None:
        self.rid = rid
        self.ssrc = ssrc
        self.rank = layer_rank(rid)
        self.cache = PacketCache(cache_size)
        self.last_seen = 0.0
        self.packets = 0
        self.octets = 0
        """Bytes received (payload + RTP header), for the bitrate meter."""
        self.keyframes = 0
        self.sr: PublisherSr | None = None
        self.bps = 0
        """Received bits per second, averaged over about ``METER_WINDOW_S`` (0 before the first window)."""
        self._meter_at = -1.0
        self._meter_octets = 0

    @property
    def spatial(self) -> int:
        return self.rank

    def active(self, now: float) -> bool:
        return now - self.last_seen < ACTIVE_FOR_S

    def meter(self, now: float) -> int:
        """Update and return ``bps`` (cheap; a new value at most once per window)."""
        if self._meter_at < 0:
            self._meter_at, self._meter_octets = now, self.octets
        elif now - self._meter_at >= METER_WINDOW_S:
            rate = (self.octets - self._meter_octets) * 8 / (now - self._meter_at)
            self.bps = int(rate if self.bps == 0 else 0.5 * self.bps + 0.5 * rate)
            self._meter_at, self._meter_octets = now, self.octets
        return self.bps

    def cached(self, seq: int) -> RtpPacket | None:
        return self.cache.get(seq)


def best_layer(layers: list[Layer], now: float) -> Layer | None:
    """The highest-quality active layer (never settle on a lower one when a higher one flows)."""
    best: Layer | None = None
    for layer in layers:
        if layer.active(now) and (best is None or layer.rank > best.rank):
            best = layer
    return best
