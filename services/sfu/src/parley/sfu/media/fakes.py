"""Fakes of the media engine's session-facing protocols, for unit tests of the session layer
(rooms, subscriptions, dynacast, connection quality) without peer connections."""

from __future__ import annotations

from typing import Any

from aiortc import RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from parley.sfu.media.interfaces import (
    MAX_SPATIAL,
    AllocationListener,
    LinkReport,
    PacketSink,
    StreamStateListener,
)
from parley.sfu.media.layers import Layer


class FakePublishedMedia:
    """A ``PublishedMedia`` (an up track): no packets; ``report`` is its link report."""

    def __init__(
        self,
        kind: str = "audio",
        track_sid: str = "TR_fake",
        *,
        audio_level: float = 0.0,
        report: LinkReport | None = None,
    ) -> None:
        self.kind = kind
        self.track_sid = track_sid
        self.audio_level = audio_level
        self.report = report
        self.mime_type = "video/VP8" if kind == "video" else "audio/opus"
        self.codecs: dict[int, RTCRtpCodecParameters] = {}
        self.layer_generation = 0
        self.sinks: list[PacketSink] = []
        self.keyframe_requests = 0
        self.closed = False

    def active_layers(self, now: float) -> list[Layer]:
        return []

    def layer_bitrates(self, now: float) -> dict[int, int]:
        return {}

    def request_keyframe(self, layer: Layer | None, now: float | None = None) -> bool:
        self.keyframe_requests += 1
        return True

    def add_sink(self, sink: PacketSink) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink: PacketSink) -> None:
        self.sinks = [s for s in self.sinks if s is not sink]

    def link_report(self, now: float) -> LinkReport | None:
        return self.report

    @property
    def jitter_ms(self) -> float:
        return self.report.jitter_ms if self.report is not None else 0.0

    def close(self) -> None:
        self.closed = True


class FakeSubscribedMedia:
    """A ``SubscribedMedia`` (a down track) on ``transceiver`` (any object with mid/kind/direction)."""

    def __init__(
        self,
        transceiver: Any = None,
        *,
        kind: str = "video",
        track_sid: str = "TR_fake",
        requested_max_spatial: int = MAX_SPATIAL,
        report: LinkReport | None = None,
    ) -> None:
        self._transceiver = transceiver
        self.kind = kind
        self.track_sid = track_sid
        self.requested_max_spatial = requested_max_spatial
        self.requested_pixels = 0
        self.report = report
        self.paused = False
        self.closed = False
        self.on_stream_state: StreamStateListener | None = None
        self.on_allocation: AllocationListener | None = None

    @property
    def transceiver(self) -> RTCRtpTransceiver:
        transceiver: RTCRtpTransceiver = self._transceiver
        return transceiver

    def set_requested(self, max_spatial: int, pixels: int = 0) -> None:
        self.requested_max_spatial = max_spatial
        self.requested_pixels = pixels

    def link_report(self, now: float) -> LinkReport | None:
        return self.report

    @property
    def rtt_ms(self) -> float | None:
        return self.report.rtt_ms if self.report is not None else None

    @property
    def jitter_ms(self) -> float:
        return self.report.jitter_ms if self.report is not None else 0.0

    def close(self) -> None:
        self.closed = True
