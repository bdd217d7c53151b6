"""The media engine's seams (LiveKit's TrackReceiver / TrackSender; mediasoup's Producer listener).

The session layer holds up tracks as :class:`PublishedMedia` and down tracks as
:class:`SubscribedMedia` (never ``Any``), so it can be tested with fakes.

An up track (``UpTrack``) is a :class:`TrackSource`: it owns the publisher's layers and feeds every
:class:`PacketSink` attached to it, without knowing what a sink is. A down track (``DownTrack``) is
a sink that also offers itself to its subscriber's stream allocator as an :class:`Allocatable`, and
reports link statistics as a :class:`LinkStats` for connection quality.

Spatial layers are numbered like LiveKit's ``VideoQuality``: 0 = LOW (rid ``q``), 1 = MEDIUM
(``h``), 2 = HIGH (``f``, or the only layer of a track without simulcast). Audio has one layer, 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiortc import RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from parley.sfu.media.layers import Layer

NO_LAYER = -1
"""A spatial layer limit meaning "nothing": forward no packet."""
MAX_SPATIAL = 2
"""The highest spatial layer (HIGH)."""


class PacketSink(Protocol):
    """What an up track feeds: every packet of every layer, on the synchronous packet path."""

    def forward(self, layer: Layer, packet: RtpPacket, keyframe: bool, now: float) -> None:
        """A media packet of ``layer`` (the sink decides whether to send it)."""

    def skip(self, layer: Layer, seq: int) -> None:
        """A packet of ``layer`` that carries no media (padding): keep sequence numbers contiguous."""


class TrackSource(Protocol):
    """What a down track needs from an up track."""

    @property
    def kind(self) -> str:
        """``audio`` or ``video``."""

    @property
    def track_sid(self) -> str: ...

    @property
    def mime_type(self) -> str:
        """Codec of the latest packet, e.g. ``video/VP8``."""

    @property
    def codecs(self) -> dict[int, RTCRtpCodecParameters]:
        """Publisher payload type -> codec."""

    @property
    def layer_generation(self) -> int:
        """Changes whenever a layer appears or is replaced (selectors re-target at once then)."""

    def active_layers(self, now: float) -> list[Layer]:
        """Layers with packets in the last second, lowest spatial layer first."""

    def layer_bitrates(self, now: float) -> dict[int, int]:
        """Spatial layer -> received bits per second (recent average), for active layers."""

    def request_keyframe(self, layer: Layer | None, now: float | None = None) -> bool:
        """PLI for ``layer`` (None: every layer), throttled per layer."""

    def add_sink(self, sink: PacketSink) -> None: ...

    def remove_sink(self, sink: PacketSink) -> None: ...


@dataclass(frozen=True, slots=True)
class LayerBitrate:
    """A layer the allocator may choose and what it costs."""

    spatial: int
    bps: int


class Allocatable(Protocol):
    """A video down track as its subscriber's stream allocator sees it (audio is never allocated)."""

    @property
    def track_sid(self) -> str: ...

    @property
    def is_screen_share(self) -> bool:
        """Screen share is served before camera video."""

    @property
    def requested_max_spatial(self) -> int:
        """The highest layer the subscriber asked for (``NO_LAYER`` when it disabled the track or
        the publisher muted it): the allocator never gives more."""

    @property
    def requested_pixels(self) -> int:
        """width x height the subscriber asked for (0 = unknown): bigger views are served first."""

    def layer_bitrates(self, now: float) -> list[LayerBitrate]:
        """Available layers up to ``requested_max_spatial``, lowest first, with their cost."""

    def set_allocation(self, max_spatial: int) -> None:
        """The highest layer the link allows now (``NO_LAYER``: paused for bandwidth)."""

    def send_padding(self, size: int, count: int) -> int:
        """Send ``count`` padding-only packets of ``size`` bytes (RTX when negotiated) to probe the
        link; returns the bytes sent (0 if this track cannot pad)."""


@dataclass(frozen=True, slots=True)
class LinkReport:
    """What a subscriber's receiver reports about one down track (RTCP RR), or what an up track
    measures of its publisher's stream."""

    fraction_lost: float
    """0..1 over the last report interval."""
    jitter_ms: float
    rtt_ms: float | None
    """Round-trip time from RR lsr/dlsr (None before the first RR that echoes an SR)."""
    bitrate_bps: int
    """What was sent (down) or received (up) over the last interval."""
    expected_bps: int
    """What would have been sent at the requested layer without bandwidth limits (down), or the
    top layer's typical bitrate (up); 0 when unknown. Connection quality compares the two."""
    bandwidth_paused: bool = False
    """(down) The subscriber's stream allocator forwards no layer: its link cannot carry even the
    lowest one."""


class LinkStats(Protocol):
    """A down or up track's link, for connection quality (``connection_quality.py``)."""

    @property
    def track_sid(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def link_report(self, now: float) -> LinkReport | None:
        """The latest report, or None when nothing was measured yet."""


StreamStateListener = Callable[[str, bool], None]
"""(track sid, paused): the stream allocator paused a down track for bandwidth, or resumed it."""
AllocationListener = Callable[[str, int, int], None]
"""(track sid, allocated spatial layer or ``NO_LAYER``, the subscriber's estimate in bit/s): the
stream allocator changed the highest layer a down track may forward."""


class PublishedMedia(TrackSource, LinkStats, Protocol):
    """An up track as the session layer holds it (``PublishedTrack.up``)."""

    @property
    def audio_level(self) -> float:
        """0..1 over the last ~0.4 s (audio; 0 for video)."""

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter of the publisher's stream as received (0 before packets); read
        without side effects (metrics sample it)."""

    def close(self) -> None: ...


class SubscribedMedia(LinkStats, Protocol):
    """A down track as the session layer holds it (``Participant.downtracks``)."""

    on_stream_state: StreamStateListener | None
    on_allocation: AllocationListener | None

    @property
    def transceiver(self) -> RTCRtpTransceiver:
        """The subscriber m-line it sends on."""

    @property
    def paused(self) -> bool:
        """The publisher muted the track."""

    @paused.setter
    def paused(self, value: bool) -> None: ...

    @property
    def requested_max_spatial(self) -> int: ...

    def set_requested(self, max_spatial: int, pixels: int = 0) -> None:
        """The subscriber's layer limit (``NO_LAYER``: disabled) and view size."""

    @property
    def rtt_ms(self) -> float | None:
        """Round trip to the subscriber from its latest receiver report (None before one)."""

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter the subscriber reported last."""

    def close(self) -> None: ...
