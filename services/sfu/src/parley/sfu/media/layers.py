"""Simulcast layers of a published track and which one a subscriber should get."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from parley.sfu.media.packet_cache import PacketCache
from parley.sfu.media.sender_report import PublisherSr

ACTIVE_FOR_S = 1.0
"""A layer without packets for this long is no longer a forwarding candidate."""
_RANK = {"q": 0, "l": 0, "h": 1, "m": 1, "f": 2, "": 2}


def layer_rank(rid: str) -> int:
    """Quality order of a rid: q < h < f (LiveKit), numbers ascending, no rid = the only layer."""
    if rid in _RANK:
        return _RANK[rid]
    if rid.isdigit():
        return int(rid)
    return 1


class Layer:
    """One received RTP stream (an SSRC; a simulcast layer when ``rid`` is set)."""

    __slots__ = ("cache", "keyframes", "last_seen", "packets", "rank", "rid", "sr", "ssrc")

    def __init__(self, rid: str, ssrc: int, cache_size: int) -> None:
        self.rid = rid
        self.ssrc = ssrc
        self.rank = layer_rank(rid)
        self.cache = PacketCache(cache_size)
        self.last_seen = 0.0
        self.packets = 0
        self.keyframes = 0
        self.sr: PublisherSr | None = None

    def active(self, now: float) -> bool:
        return now - self.last_seen < ACTIVE_FOR_S

    def cached(self, seq: int) -> RtpPacket | None:
        return self.cache.get(seq)


def best_layer(layers: list[Layer], now: float) -> Layer | None:
    """The highest-quality active layer (never settle on a lower one when a higher one flows)."""
    best: Layer | None = None
    for layer in layers:
        if layer.active(now) and (best is None or layer.rank > best.rank):
            best = layer
    return best
