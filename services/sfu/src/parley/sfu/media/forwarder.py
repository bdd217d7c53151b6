"""Per down track: which packets go out (the layer selector) and how they are rewritten (munging).

LiveKit's ``pkg/sfu/forwarder.go``. Three limits decide the highest spatial layer forwarded:
the subscriber's request (adaptive stream / ``UpdateTrackSettings``; ``NO_LAYER`` when it disabled
the track), the stream allocator's allocation (what its link carries; ``NO_LAYER`` when paused for
bandwidth) and the publisher's mute. The effective limit is the smallest; the selector switches
layers on keyframes, and every switch or resume starts a new munger segment, so sequence numbers,
timestamps and VP8 picture ids stay continuous for the subscriber.
"""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from parley.sfu.media.interfaces import MAX_SPATIAL, NO_LAYER, TrackSource
from parley.sfu.media.layers import Layer
from parley.sfu.media.out_stream import OutStream
from parley.sfu.media.videolayerselector import Decision, LayerSelector, NullSelector, SimulcastSelector

Forwarded = tuple[int, int, bytes]
"""(out sequence number, out timestamp, rewritten payload head) of a packet to send."""


class Forwarder:
    __slots__ = ("_allocated", "_muted", "_out", "_requested", "_selector", "_source")

    def __init__(self, source: TrackSource, out: OutStream, *, video: bool) -> None:
        self._source = source
        self._out = out
        self._selector: LayerSelector = SimulcastSelector(source) if video else NullSelector()
        self._requested = MAX_SPATIAL
        self._allocated = MAX_SPATIAL
        self._muted = False

    # ---- limits

    @property
    def requested(self) -> int:
        """The subscriber's limit; ``NO_LAYER`` when it disabled the track."""
        return self._requested

    @property
    def allocated(self) -> int:
        return self._allocated

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def limit(self) -> int:
        if self._muted:
            return NO_LAYER
        return min(self._requested, self._allocated)

    def set_requested(self, max_spatial: int) -> None:
        self._requested = max_spatial
        self._apply()

    def set_allocated(self, max_spatial: int) -> None:
        self._allocated = max_spatial
        self._apply()

    def set_muted(self, muted: bool) -> None:
        self._muted = muted
        self._apply()

    def _apply(self) -> None:
        # a pause forgets the current layer; the next packet of the target after it (a keyframe,
        # which the selector requests) starts a new segment
        self._selector.set_limit(self.limit)

    # ---- state

    @property
    def current(self) -> Layer | None:
        return self._selector.current

    @property
    def target(self) -> Layer | None:
        return self._selector.target

    # ---- the packet path (synchronous)

    def forward(
        self, layer: Layer, packet: RtpPacket, keyframe: bool, now: float, vp8: bool
    ) -> Forwarded | None:
        decision = self._selector.select(layer, keyframe, now)
        if decision == Decision.DROP:
            return None
        out = self._out
        if decision == Decision.SWITCH:
            out.munger.switch()
            out.vp8.switch()
        munger = out.munger
        mapped = munger.map(packet.sequence_number, packet.timestamp, now)
        if mapped is None:
            return None
        out_seq, out_ts = mapped
        head = out.vp8.rewrite(packet.payload, out_seq == munger.last_out_seq) if vp8 else b""
        return out_seq, out_ts, head

    def skip(self, layer: Layer, seq: int) -> None:
        """A packet of ``layer`` that is not forwarded (padding)."""
        if layer is self._selector.current:
            self._out.munger.drop(seq)
