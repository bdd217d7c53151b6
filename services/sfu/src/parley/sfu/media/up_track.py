"""A published track: takes over an aiortc receiver's RTP, keeps per-layer state, feeds DownTracks."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unwrap_rtx,
)

from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media.audio_level import AudioLevel
from parley.sfu.media.interfaces import LinkReport, PacketSink
from parley.sfu.media.keyframe import keyframe_detector, vp8_keyframe_size
from parley.sfu.media.layers import Layer, best_layer
from parley.sfu.media.publisher_feedback import PublisherFeedback
from parley.sfu.media.sender_report import PublisherSr

if TYPE_CHECKING:
    from parley.sfu.media.context import MediaContext

KEYFRAME_REQUEST_INTERVAL_S = 0.5
"""At most one PLI per layer in this interval, however many subscribers ask."""
RTCP_INTERVAL_S = 1.0
RTP_HEADER_BYTES = 12
AUDIO_CACHE_SIZE = 128
"""Audio packets kept for NACKs (~2.5 s of 20 ms frames): only subscribers that negotiated ``nack``
for the audio codec ask for them."""


class UpTrack:
    """One published track (a ``TrackSource`` and a ``LinkStats``, see ``interfaces.py``): feeds every
    packet of every layer to its sinks. Construct after the publisher's offer was applied, with the
    node's ``MediaContext`` (counters, settings, the publisher feedback of the receiver's transport)."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        *,
        kind: str,
        mid: str,
        track_sid: str,
        context: MediaContext,
        transceiver: RTCRtpTransceiver | None = None,
    ) -> None:
        self._context = context
        self._stats = context.stats
        self._receiver = receiver
        self._kind = kind
        self._mid = mid
        self._track_sid = track_sid
        self._video = kind == "video"
        self._cache_size = context.packet_cache_size
        self._codecs: dict[int, RTCRtpCodecParameters] = {}
        self._rtx_apt: dict[int, int] = {}
        self._rtx_ssrcs: dict[int, int] = {}
        self._mime = ""
        self._last_pt = -1
        self._is_keyframe = keyframe_detector("")
        self._layers: list[Layer] = []
        self._by_ssrc: dict[int, Layer] = {}
        self._by_rid: dict[str, Layer] = {}
        self._sizes: dict[int, tuple[int, int]] = {}
        self._sinks: list[PacketSink] = []
        self.layer_generation = 0
        """Bumped when a layer appears or is replaced (``TrackSource``)."""
        self._loss: dict[int, int] = {}
        """SSRC -> fraction lost (0..255) in the latest receiver report interval."""
        self._audio = AudioLevel()
        self._nack: dict[int, NackGenerator] = {}
        self._streams: dict[int, StreamStatistics] = {}
        self._pli_at: dict[int, float] = {}
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        self.packets_received = 0
        self.keyframe_requests_sent = 0
        self.nacks_sent = 0
        if transceiver is not None:
            self._set_codecs(internals.transceiver_codecs(transceiver))
        if internals.receiver_started(receiver):
            self._set_codecs(list(internals.receiver_codecs(receiver).values()))
            self._rtx_ssrcs.update(internals.receiver_rtx_ssrcs(receiver))
        self._feedback = PublisherFeedback.join(context, receiver.transport, self)
        internals.hook_receiver(
            receiver, on_rtp=self._on_rtp, on_rtcp=self._on_rtcp, on_parameters=self._on_parameters
        )
        self._stats.tracks_in += 1
        try:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(RTCP_INTERVAL_S, self._rtcp_tick)
        except RuntimeError:
            self._timer = None

    # ---- properties (contract)

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def mid(self) -> str:
        return self._mid

    @property
    def track_sid(self) -> str:
        return self._track_sid

    @property
    def mime_type(self) -> str:
        """The codec of the last packet (before any packet: the first negotiated codec), e.g. video/VP8."""
        return self._mime

    @property
    def audio_level(self) -> float:
        """0..1, mean linear level of the last ~0.4 s (RFC 6464); 0 for video or silence."""
        return self._audio.level(time.monotonic()) if not self._video else 0.0

    @property
    def layers(self) -> list[str]:
        """rids seen (``""`` for a stream without rid), lowest quality first."""
        return [layer.rid for layer in sorted(self._layers, key=lambda x: x.rank)]

    @property
    def width(self) -> int | None:
        size = self._size()
        return size[0] if size else None

    @property
    def height(self) -> int | None:
        size = self._size()
        return size[1] if size else None

    @property
    def codecs(self) -> dict[int, RTCRtpCodecParameters]:
        return self._codecs

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def context(self) -> MediaContext:
        return self._context

    @property
    def feedback_ssrc(self) -> int | None:
        """The sender SSRC of our RTCP to the publisher."""
        return internals.receiver_rtcp_ssrc(self._receiver)

    @property
    def feedback(self) -> PublisherFeedback:
        """The bandwidth feedback (REMB) of this track's publisher peer connection."""
        return self._feedback

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter (RFC 3550 A.8) of the top active layer's stream; 0 before packets."""
        layer = best_layer(self._layers, time.monotonic())
        stream = self._streams.get(layer.ssrc) if layer is not None else None
        if stream is None:
            return 0.0
        return float(stream.jitter) * 1000 / (90000 if self._video else 48000)

    @property
    def best(self) -> Layer | None:
        """The highest active layer."""
        return best_layer(self._layers, time.monotonic())

    def active_layers(self, now: float) -> list[Layer]:
        """Layers with packets in the last second, lowest spatial layer first."""
        return [layer for layer in self._layers if layer.active(now)]

    def layer_bitrates(self, now: float) -> dict[int, int]:
        """Spatial layer -> received bits per second, for active layers."""
        return {layer.rank: layer.meter(now) for layer in self._layers if layer.active(now)}

    def link_report(self, now: float) -> LinkReport | None:
        """The publisher's stream as received: loss and jitter of the top active layer, total bitrate."""
        layers = self.active_layers(now)
        if not layers:
            return None if not self._layers else LinkReport(0.0, 0.0, None, 0, 0)
        top = layers[-1]
        stats = self._streams.get(top.ssrc)
        clock = 90000 if self._video else 48000
        jitter_ms = stats.jitter * 1000 / clock if stats is not None else 0.0
        bitrate = sum(layer.meter(now) for layer in layers)
        return LinkReport(self._loss.get(top.ssrc, 0) / 256, jitter_ms, None, bitrate, 0)

    def _size(self) -> tuple[int, int] | None:
        for layer in sorted(self._layers, key=lambda x: -x.rank):
            if layer.ssrc in self._sizes:
                return self._sizes[layer.ssrc]
        return None

    # ---- wiring

    def add_sink(self, sink: PacketSink) -> None:
        if sink not in self._sinks:
            self._sinks = [*self._sinks, sink]

    def remove_sink(self, sink: PacketSink) -> None:
        self._sinks = [s for s in self._sinks if s is not sink]

    def layer_for_ssrc(self, ssrc: int) -> Layer | None:
        return self._by_ssrc.get(ssrc)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        internals.unhook_receiver(self._receiver)
        if self._timer is not None:
            self._timer.cancel()
        self._feedback.leave(self)
        self._sinks = []
        self._stats.tracks_in -= 1

    # ---- codecs

    def _on_parameters(self, parameters: RTCRtpReceiveParameters) -> None:
        # a renegotiation may reassign payload types (Chrome does after livekit-client's munging)
        self._codecs = {}
        self._rtx_apt = {}
        self._last_pt = -1
        self._set_codecs(list(parameters.codecs))
        for encoding in parameters.encodings:
            if encoding.rtx and encoding.ssrc is not None:
                self._rtx_ssrcs[encoding.rtx.ssrc] = encoding.ssrc

    def _set_codecs(self, codecs: list[RTCRtpCodecParameters]) -> None:
        for codec in codecs:
            if codec.payloadType is None:
                continue
            self._codecs[codec.payloadType] = codec
            apt = codec.parameters.get("apt")
            if codec.mimeType.lower().endswith("/rtx") and isinstance(apt, int):
                self._rtx_apt[codec.payloadType] = apt
        if not self._mime:
            first = next((c for c in codecs if not c.mimeType.lower().endswith("/rtx")), None)
            if first is not None:
                self._set_mime(first.mimeType)

    def _set_mime(self, mime: str) -> None:
        self._mime = mime
        self._is_keyframe = keyframe_detector(mime) if self._video else keyframe_detector("")

    # ---- the packet path (synchronous; never raises into aiortc)

    def _on_rtp(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        try:
            self._handle_rtp(packet, arrival_time_ms)
        except Exception as exc:
            self._context.errors.report("up_track.rtp", exc, track=self._track_sid)

    def _handle_rtp(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        now = time.monotonic()
        counters = self._stats
        nbytes = len(packet.payload) + RTP_HEADER_BYTES
        counters.packets_in += 1
        counters.bytes_in += nbytes
        self.packets_received += 1
        pt = packet.payload_type
        rtx_apt = self._rtx_apt.get(pt)
        if rtx_apt is not None:
            counters.packets_in_rtx += 1
            counters.bytes_in_rtx += nbytes
        # account every packet (RTX and padding probes included) before anything may drop it
        self._feedback.on_packet(
            packet.ssrc,
            packet.sequence_number,
            len(packet.payload) + packet.padding_size + RTP_HEADER_BYTES,
            rtx_apt is None,
            now,
        )
        if rtx_apt is not None:
            recovered = self._unwrap_rtx(packet, rtx_apt)
            if recovered is None:
                return
            if self._video and self._is_duplicate(recovered):
                return  # a probe or late retransmission of a packet we already have
            packet = recovered
            pt = packet.payload_type
        if pt != self._last_pt:
            codec = self._codecs.get(pt)
            if codec is None:
                counters.packets_dropped += 1
                return
            self._last_pt = pt
            if codec.mimeType != self._mime:
                self._set_mime(codec.mimeType)
        layer = self._by_ssrc.get(packet.ssrc)
        if layer is None:
            layer = self._new_layer(packet)
        layer.last_seen = now
        layer.packets += 1
        layer.octets += len(packet.payload) + RTP_HEADER_BYTES
        if self._video:
            self._video_feedback(layer, packet)
        stream = self._streams.get(packet.ssrc)
        if stream is not None:
            stream.add(packet)
        if not packet.payload:  # padding only (bandwidth probing): keep subscribers' seq contiguous
            for sink in self._sinks:
                sink.skip(layer, packet.sequence_number)
            return
        keyframe = self._is_keyframe(packet.payload)
        layer.cache.put(packet)
        if self._video:
            if keyframe:
                layer.keyframes += 1
                if self._mime.lower() == "video/vp8":
                    size = vp8_keyframe_size(packet.payload)
                    if size is not None:
                        self._sizes[layer.ssrc] = size
        elif packet.extensions.audio_level is not None:
            self._audio.add(packet.extensions.audio_level[1], now)
        for sink in self._sinks:
            try:
                sink.forward(layer, packet, keyframe, now)
            except Exception as exc:
                self._context.errors.report("down_track.forward", exc, track=self._track_sid)

    def _new_layer(self, packet: RtpPacket) -> Layer:
        rid = packet.extensions.rtp_stream_id or ""
        old = self._by_rid.get(rid)
        if old is not None:  # the publisher restarted this layer with a new SSRC
            self._by_ssrc.pop(old.ssrc, None)
            self._layers.remove(old)
        layer = Layer(rid, packet.ssrc, self._cache_size if self._video else AUDIO_CACHE_SIZE)
        self._layers.append(layer)
        self._layers.sort(key=lambda x: x.rank)
        self.layer_generation += 1
        self._by_ssrc[packet.ssrc] = layer
        self._by_rid[rid] = layer
        codec = self._codecs.get(packet.payload_type)
        self._streams[packet.ssrc] = StreamStatistics(codec.clockRate if codec else 90000)
        if self._video:
            self._nack[packet.ssrc] = NackGenerator()
        return layer

    def _is_duplicate(self, packet: RtpPacket) -> bool:
        layer = self._by_ssrc.get(packet.ssrc)
        return layer is not None and layer.cached(packet.sequence_number) is not None

    def _unwrap_rtx(self, packet: RtpPacket, apt: int) -> RtpPacket | None:
        if len(packet.payload) < 2:  # RTX padding used for probing
            return None
        media_ssrc = self._rtx_ssrcs.get(packet.ssrc)
        if media_ssrc is None:
            rrid = packet.extensions.repaired_rtp_stream_id
            layer = self._by_rid.get(rrid) if rrid is not None else None
            if layer is None:
                return None
            media_ssrc = layer.ssrc
            self._rtx_ssrcs[packet.ssrc] = media_ssrc
        return unwrap_rtx(packet, payload_type=apt, ssrc=media_ssrc)

    def _video_feedback(self, layer: Layer, packet: RtpPacket) -> None:
        """NACKs for this layer's gaps (the bandwidth estimate is the PublisherFeedback's)."""
        rtcp_ssrc = internals.receiver_rtcp_ssrc(self._receiver)
        if rtcp_ssrc is None:
            return
        generator = self._nack.get(layer.ssrc)
        if generator is not None and generator.add(packet) and generator.missing:
            nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=rtcp_ssrc, media_ssrc=layer.ssrc)
            nack.lost = sorted(generator.missing)
            self._send_rtcp(bytes(nack))
            self.nacks_sent += 1
            self._stats.nacks_sent += 1

    def request_keyframe(self, layer: Layer | None, now: float | None = None) -> bool:
        """PLI to the publisher for ``layer`` (default: every layer), at most one per layer per 500 ms."""
        if not self._video:
            return False
        rtcp_ssrc = internals.receiver_rtcp_ssrc(self._receiver)
        if rtcp_ssrc is None:
            return False
        now = time.monotonic() if now is None else now
        sent = False
        for target in [layer] if layer is not None else list(self._layers):
            last = self._pli_at.get(target.ssrc)
            if last is not None and now - last < KEYFRAME_REQUEST_INTERVAL_S:
                continue
            self._pli_at[target.ssrc] = now
            pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=rtcp_ssrc, media_ssrc=target.ssrc)
            if self._send_rtcp(bytes(pli)):
                self.keyframe_requests_sent += 1
                self._stats.plis_sent += 1
                sent = True
        return sent

    def _send_rtcp(self, data: bytes) -> bool:
        try:
            return internals.send_rtp_sync(self._receiver.transport, data)
        except ConnectionError:
            return False

    # ---- RTCP from the publisher and to it

    def _on_rtcp(self, packet: AnyRtcpPacket) -> None:
        try:
            if isinstance(packet, RtcpSrPacket):
                layer = self._by_ssrc.get(packet.ssrc)
                if layer is not None:
                    info = packet.sender_info
                    layer.sr = PublisherSr(info.ntp_timestamp, info.rtp_timestamp, time.monotonic())
        except Exception as exc:
            self._context.errors.report("up_track.rtcp", exc, track=self._track_sid)

    def _rtcp_tick(self) -> None:
        if self._closed:
            return
        try:
            self._follow_transport()
            self._send_receiver_report()
        except Exception as exc:
            self._context.errors.report("up_track.rr", exc, track=self._track_sid)
        finally:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(RTCP_INTERVAL_S * (0.5 + random.random()), self._rtcp_tick)

    def _follow_transport(self) -> None:
        """Move to the feedback of the receiver's current transport (bundling may replace it)."""
        transport = self._receiver.transport
        if transport is not self._feedback.transport:
            self._feedback.leave(self)
            self._feedback = PublisherFeedback.join(self._context, transport, self)

    def _send_receiver_report(self) -> None:
        rtcp_ssrc = internals.receiver_rtcp_ssrc(self._receiver)
        if rtcp_ssrc is None or not self._streams:
            return
        now = time.monotonic()
        reports = []
        for ssrc, stream in self._streams.items():
            layer = self._by_ssrc.get(ssrc)
            lsr = dlsr = 0
            if layer is not None and layer.sr is not None:
                lsr = (layer.sr.ntp >> 16) & 0xFFFFFFFF
                dlsr = int((now - layer.sr.arrival) * 65536) & 0xFFFFFFFF
            fraction_lost = stream.fraction_lost  # a property that closes the interval: read once
            self._loss[ssrc] = fraction_lost
            reports.append(
                RtcpReceiverInfo(
                    ssrc=ssrc,
                    fraction_lost=fraction_lost,
                    packets_lost=stream.packets_lost,
                    highest_sequence=stream.max_seq or 0,
                    jitter=stream.jitter,
                    lsr=lsr,
                    dlsr=dlsr,
                )
            )
        self._send_rtcp(bytes(RtcpRrPacket(ssrc=rtcp_ssrc, reports=reports[:31])))
