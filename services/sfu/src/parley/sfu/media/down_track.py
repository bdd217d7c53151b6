"""One (subscriber, track): forwards a TrackSource's RTP to a subscriber's track-less aiortc sender.

Which packets go out and how they are rewritten is the ``Forwarder``'s (layer selection, munging);
this module owns the aiortc side: negotiation, sending, NACK/RTX, RTCP, sender reports, and the
``Allocatable`` / ``LinkStats`` faces the subscriber's stream allocator and connection quality use.

The output stream (sequence numbers, timestamps, VP8 picture ids, RTX sequence numbers, SR counters)
belongs to the sender (``out_stream.py``, kept in the media context), so a DownTrack attached to a transceiver whose previous
DownTrack closed continues that SSRC's stream instead of restarting it.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    unpack_remb_fci,
)

from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media.congestion import SubscriberCongestion
from parley.sfu.media.forwarder import Forwarder
from parley.sfu.media.interfaces import (
    MAX_SPATIAL,
    NO_LAYER,
    AllocationListener,
    LayerBitrate,
    LinkReport,
    StreamStateListener,
    TrackSource,
)
from parley.sfu.media.layers import Layer
from parley.sfu.media.rtp_writer import RtpWriter
from parley.sfu.media.send_path import SendPath
from parley.sfu.media.sender_report import build_sender_report, report_times

if TYPE_CHECKING:
    from parley.sfu.media.context import MediaContext

SR_INTERVAL_S = 1.0
_Sent = tuple[int, Layer, int, int, bytes]
"""(out seq, source layer, source seq, out timestamp, rewritten payload head) of a sent packet, for NACKs."""
_Route = tuple[int, bool]
"""(out payload type, is VP8) of an incoming payload type."""
SR_MEMORY = 8
"""Sender reports remembered for RTT (RR lsr -> when the SR was sent)."""


def _has_nack(codec: RTCRtpCodecParameters) -> bool:
    return any(fb.type == "nack" and not fb.parameter for fb in codec.rtcpFeedback)


def _codec_matches(a: RTCRtpCodecParameters, b: RTCRtpCodecParameters) -> bool:
    if a.mimeType.lower() != b.mimeType.lower() or a.clockRate != b.clockRate:
        return False
    if a.mimeType.lower() == "video/h264":
        return a.parameters.get("packetization-mode", "0") == b.parameters.get("packetization-mode", "0")
    return True


class DownTrack:
    """Create with :meth:`attach`. Forwards without decoding. A ``PacketSink`` of its source, an
    ``Allocatable`` for its subscriber's stream allocator and a ``LinkStats`` (``interfaces.py``)."""

    def __init__(
        self,
        transceiver: RTCRtpTransceiver,
        up: TrackSource,
        *,
        context: MediaContext,
        screen_share: bool = False,
    ) -> None:
        self._context = context
        self._stats = context.stats
        self._transceiver = transceiver
        self._sender: RTCRtpSender = transceiver.sender
        self._up = up
        self._ssrc = internals.sender_ssrc(self._sender)
        self._rtx_ssrc = internals.sender_rtx_ssrc(self._sender)
        self._video = up.kind == "video"
        self._clock_rate = 90000 if self._video else 48000
        self._out = context.out_streams.claim(self._sender, self._clock_rate)
        self._munger = self._out.munger
        self._forwarder = Forwarder(up, self._out, video=self._video)
        self._screen_share = screen_share
        self._requested_pixels = 0
        self.on_stream_state: StreamStateListener | None = None
        """Told when the allocator pauses (True) or resumes (False) this track for bandwidth."""
        self.on_allocation: AllocationListener | None = None
        """Told of every change of the layer the allocator allows (with the estimate behind it)."""
        self._sr_sent: dict[int, float] = {}
        self._report: tuple[float, float] = (0.0, 0.0)
        """(jitter ms, rtt ms or -1) from the latest receiver report."""
        self._link_mark: tuple[float, int] = (time.monotonic(), 0)
        self._writer: RtpWriter | None = None
        self._transport: RTCDtlsTransport | None = None
        self._path: SendPath | None = None
        """The transport's cached send path (``send_path.py``)."""
        self._cc: SubscriberCongestion | None = None
        """The subscriber transport's congestion controller, while transport-wide-cc is negotiated."""
        self._codecs: list[RTCRtpCodecParameters] = []
        self._pt_map: dict[int, _Route | None] = {}
        self._rtx_pt: dict[int, int] = {}
        """Out payload type -> its RTX payload type, when the subscriber negotiated RTX for it."""
        self._nack_pts: set[int] = set()
        """Out payload types whose NACKs are answered (video always; audio only if negotiated)."""
        self._closed = False
        self._ring_size = context.packet_cache_size
        self._sent: list[_Sent | None] = [None] * self._ring_size
        self._timer: asyncio.TimerHandle | None = None
        self.packets_sent = 0
        self.octets_sent = 0
        self.nacks_answered = 0
        self.rtx_sent = 0
        self.keyframe_requests_received = 0
        self.remb_bps: int | None = None
        self.fraction_lost = 0
        self._lost_reported: int | None = None
        """Cumulative loss of the subscriber's previous receiver report."""

    @classmethod
    def attach(
        cls,
        pc: RTCPeerConnection,
        up: TrackSource,
        *,
        stream_id: str,
        track_id: str,
        context: MediaContext,
        transceiver: RTCRtpTransceiver | None = None,
        screen_share: bool = False,
    ) -> DownTrack:
        """Forward ``up`` to ``pc``: a new sendonly transceiver (call before createOffer), or the given
        one (v1: the client's recvonly m-line, before createAnswer; v0/v1: an m-line whose previous
        DownTrack was closed, whose stream then continues). Raises ``SenderInUseError`` if the
        transceiver's DownTrack is still open."""
        if transceiver is None:
            transceiver = pc.addTransceiver(up.kind, direction="sendonly")
            _prefer_codec(transceiver, up)
        # claims the sender's stream (raises if it is still in use)
        down = cls(transceiver, up, context=context, screen_share=screen_share)
        if transceiver.direction in ("recvonly", "inactive"):
            transceiver.direction = "sendonly"
        internals.set_sender_msid(transceiver.sender, stream_id, track_id)
        internals.hook_sender(transceiver.sender, on_rtcp=down._on_rtcp, on_parameters=down._on_parameters)
        up.add_sink(down)
        context.stats.tracks_out += 1
        return down

    # ---- contract properties

    @property
    def transceiver(self) -> RTCRtpTransceiver:
        return self._transceiver

    @property
    def context(self) -> MediaContext:
        return self._context

    @property
    def up_track(self) -> TrackSource:
        return self._up

    @property
    def track_sid(self) -> str:
        return self._up.track_sid

    @property
    def kind(self) -> str:
        return self._up.kind

    @property
    def ssrc(self) -> int:
        return self._ssrc

    @property
    def current_layer(self) -> str | None:
        current = self._forwarder.current
        return current.rid if current is not None else None

    @property
    def current_spatial(self) -> int:
        current = self._forwarder.current
        return current.rank if current is not None else NO_LAYER

    @property
    def paused(self) -> bool:
        """The publisher muted the track (nothing is forwarded)."""
        return self._forwarder.muted

    @paused.setter
    def paused(self, value: bool) -> None:
        self._forwarder.set_muted(value)

    @property
    def rtt_ms(self) -> float | None:
        """Round trip to the subscriber from its latest receiver report (None until one answers an SR)."""
        rtt = self._report[1]
        return rtt if rtt >= 0 else None

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter the subscriber reported last."""
        return self._report[0]

    # ---- what the subscriber asked for (adaptive stream)

    def set_requested(self, max_spatial: int, pixels: int = 0) -> None:
        """The subscriber's limit (``NO_LAYER``: it disabled the track) and the size of its view."""
        self._requested_pixels = pixels
        self._forwarder.set_requested(max_spatial if self._video or max_spatial == NO_LAYER else MAX_SPATIAL)

    @property
    def requested_max_spatial(self) -> int:
        forwarder = self._forwarder
        return NO_LAYER if forwarder.muted else forwarder.requested

    @property
    def requested_pixels(self) -> int:
        return self._requested_pixels

    @property
    def is_screen_share(self) -> bool:
        return self._screen_share

    # ---- the stream allocator's side (Allocatable)

    @property
    def allocation(self) -> int:
        return self._forwarder.allocated

    def set_allocation(self, max_spatial: int) -> None:
        before = self._forwarder.allocated
        if max_spatial == before:
            return
        self._forwarder.set_allocated(max_spatial)
        told = self.on_allocation
        if told is not None:
            told(self._up.track_sid, max_spatial, self._cc.estimate_bps if self._cc is not None else 0)
        listener = self.on_stream_state
        if listener is not None and (before == NO_LAYER) != (max_spatial == NO_LAYER):
            listener(self._up.track_sid, max_spatial == NO_LAYER)

    def layer_bitrates(self, now: float) -> list[LayerBitrate]:
        """Active layers up to the request (at least the lowest), lowest first, with their bitrate."""
        requested = self.requested_max_spatial
        if requested == NO_LAYER:
            return []
        rates = sorted(self._up.layer_bitrates(now).items())
        chosen = [LayerBitrate(spatial, bps) for spatial, bps in rates if spatial <= requested]
        if not chosen and rates:
            chosen = [LayerBitrate(*rates[0])]
        return chosen

    def send_padding(self, size: int, count: int) -> int:
        """Padding-only RTX packets (RFC 4588 allows them; libwebrtc probes the same way): only when
        the subscriber negotiated RTX and the stream has started."""
        writer = self._writer
        rtx_pt = next(iter(self._rtx_pt.values()), None)
        if writer is None or rtx_pt is None or not self._munger.started or self._closed:
            return 0
        size = max(1, min(size, 255))
        padding = RtpPacket(payload_type=rtx_pt)
        padding.payload = bytes(size - 1) + bytes([size])
        sent = 0
        for _ in range(count):
            data = writer.write(
                padding,
                payload_type=rtx_pt,
                seq=self._out.next_rtx_seq(),
                ts=self._munger.last_out_ts,
                ssrc=self._rtx_ssrc,
                twcc_seq=self._twcc_seq(size + 40, time.monotonic(), probe=True),
            )
            data = bytes([data[0] | 0x20]) + data[1:]  # P bit: the payload is padding
            if self._transmit(data):
                sent += len(data)
                self._stats.packets_out += 1
                self._stats.bytes_out += len(data)
        return sent

    # ---- connection quality (LinkStats)

    def link_report(self, now: float) -> LinkReport | None:
        """Loss, jitter and RTT from the subscriber's latest RR; bitrate since the previous call."""
        if not self._munger.started:
            return None
        at, octets = self._link_mark
        elapsed = now - at
        bitrate = int((self.octets_sent - octets) * 8 / elapsed) if elapsed > 0 else 0
        self._link_mark = (now, self.octets_sent)
        jitter_ms, rtt_ms = self._report
        expected = 0
        if self._video and self.requested_max_spatial != NO_LAYER:
            rates = self.layer_bitrates(now)
            expected = rates[-1].bps if rates else 0
        return LinkReport(
            fraction_lost=self.fraction_lost / 256,
            jitter_ms=jitter_ms,
            rtt_ms=rtt_ms if rtt_ms >= 0 else None,
            bitrate_bps=bitrate,
            expected_bps=expected,
            bandwidth_paused=self._video and self._forwarder.allocated == NO_LAYER,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._cc is not None:
            self._cc.leave(self)
            self._cc = None
        self._up.remove_sink(self)
        self._context.out_streams.release(self._out)
        self._stats.tracks_out -= 1
        # The retired m-line must not keep this track's msid: a later subscription to the same
        # track (on this m-line or a new one) would then look unchanged or duplicated to libwebrtc.
        internals.set_sender_msid(self._sender, "-", f"retired-{id(self):x}")

    # ---- negotiation

    def _on_parameters(self, parameters: RTCRtpSendParameters) -> None:
        if self._closed:
            return
        self._codecs = [c for c in parameters.codecs if not is_rtx(c)]
        self._pt_map = {}
        self._rtx_pt = {}
        for codec in parameters.codecs:
            apt = codec.parameters.get("apt")
            if is_rtx(codec) and isinstance(apt, int) and codec.payloadType is not None:
                self._rtx_pt[apt] = codec.payloadType
        self._nack_pts = {
            c.payloadType for c in self._codecs if c.payloadType is not None and (self._video or _has_nack(c))
        }
        self._writer = RtpWriter(internals.header_extension_ids(parameters), parameters.muxId)
        self._transport = self._sender.transport
        use_cache = self._transport is not None and self._context.cached_send_path
        self._path = SendPath.of(self._transport) if use_cache and self._transport is not None else None
        self._join_congestion()
        if self._timer is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(SR_INTERVAL_S * random.random(), self._sr_tick)
        self._up.request_keyframe(self._forwarder.target)

    def _join_congestion(self) -> None:
        transport, writer = self._transport, self._writer
        cc = self._cc
        if cc is not None and (cc.transport is not transport or writer is None or not writer.twcc_enabled):
            cc.leave(self)
            self._cc = cc = None
        if cc is None and transport is not None and writer is not None and writer.twcc_enabled:
            self._cc = SubscriberCongestion.join(self._context, transport, self, video=self._video)

    def _twcc_seq(self, size: int, now: float, probe: bool = False) -> int | None:
        cc = self._cc
        return cc.on_rtp_sent(size, now, probe) if cc is not None else None

    def _route(self, in_pt: int) -> _Route | None:
        if in_pt in self._pt_map:
            return self._pt_map[in_pt]
        source = self._up.codecs.get(in_pt)
        out = self._out_pt(source)
        route = None if out is None or source is None else (out, source.mimeType.lower() == "video/vp8")
        if self._codecs:
            self._pt_map[in_pt] = route
        return route

    def _out_pt(self, source: RTCRtpCodecParameters | None) -> int | None:
        out = None
        if source is not None:
            out = next((c.payloadType for c in self._codecs if _codec_matches(c, source)), None)
            if source.mimeType.lower() == "video/h264":
                level = str(source.parameters.get("profile-level-id", ""))[:2]
                exact = next(
                    (
                        c.payloadType
                        for c in self._codecs
                        if _codec_matches(c, source)
                        and str(c.parameters.get("profile-level-id", ""))[:2] == level
                    ),
                    None,
                )
                out = exact if exact is not None else out
        return out

    # ---- the packet path (synchronous)

    def forward(self, layer: Layer, packet: RtpPacket, keyframe: bool, now: float) -> None:
        """Called by the source for every received packet of every layer."""
        if self._writer is None:
            return
        route = self._route(packet.payload_type)
        if route is None:
            self._stats.packets_dropped += 1
            return
        out_pt, vp8 = route
        forwarded = self._forwarder.forward(layer, packet, keyframe, now, vp8)
        if forwarded is None:
            return
        out_seq, out_ts, head = forwarded
        cc = self._cc
        data = self._writer.write(
            packet,
            payload_type=out_pt,
            seq=out_seq,
            ts=out_ts,
            ssrc=self._ssrc,
            head=head,
            twcc_seq=cc.on_rtp_sent(len(packet.payload) + 40, now) if cc is not None else None,
        )
        if self._transmit(data):
            self.packets_sent += 1
            self.octets_sent += len(packet.payload)
            self._out.packets += 1
            self._out.octets += len(packet.payload)
            counters = self._stats
            counters.packets_out += 1
            counters.bytes_out += len(data)
        if out_pt in self._nack_pts:
            self._sent[out_seq % self._ring_size] = (out_seq, layer, packet.sequence_number, out_ts, head)

    def skip(self, layer: Layer, seq: int) -> None:
        """A packet of ``layer`` that is not forwarded (padding)."""
        self._forwarder.skip(layer, seq)

    def _transmit(self, data: bytes) -> bool:
        path = self._path
        try:
            if path is not None:
                return path.send(data)
            transport = self._transport
            return internals.send_rtp_sync(transport, data) if transport is not None else False
        except ConnectionError:
            return False

    # ---- RTCP from the subscriber

    def _on_rtcp(self, packet: AnyRtcpPacket) -> None:
        if self._closed:
            return
        try:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self._stats.nacks_received += 1
                self.answer_nack(packet.lost)
            elif isinstance(packet, RtcpPsfbPacket):
                if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                    self.keyframe_requests_received += 1
                    self._stats.plis_received += 1
                    self._up.request_keyframe(self._forwarder.current or self._forwarder.target)
                elif packet.fmt == RTCP_PSFB_APP:
                    self.remb_bps = unpack_remb_fci(packet.fci)[0]
            elif isinstance(packet, RtcpRrPacket):
                for report in packet.reports:
                    if report.ssrc == self._ssrc:
                        self._count_loss(report.packets_lost)
                        self._on_receiver_report(report.fraction_lost, report.jitter, report.lsr, report.dlsr)
        except Exception as exc:
            self._context.errors.report("down_track.rtcp", exc, track=self._up.track_sid)

    def _count_loss(self, cumulative: int) -> None:
        """Add the growth of the subscriber's cumulative loss to the context's counter."""
        previous, self._lost_reported = self._lost_reported, cumulative
        if previous is not None and cumulative > previous:
            self._stats.packets_lost_out += cumulative - previous

    def _on_receiver_report(self, fraction_lost: int, jitter: int, lsr: int, dlsr: int) -> None:
        self.fraction_lost = fraction_lost
        rtt_ms = -1.0
        sent = self._sr_sent.get(lsr) if lsr else None
        if sent is not None:
            rtt_ms = max(0.0, (time.monotonic() - sent - dlsr / 65536) * 1000)
        elif self._report[1] >= 0:
            rtt_ms = self._report[1]
        self._report = (jitter * 1000 / self._clock_rate, rtt_ms)

    def answer_nack(self, lost: list[int]) -> int:
        """Retransmit the packets a subscriber reported lost from the UpTrack's cache: as RTX (RFC 4588,
        own SSRC and sequence numbers) when the subscriber negotiated RTX for the codec, else as the
        original packet. Audio only when the subscriber negotiated ``nack`` for the audio codec."""
        writer = self._writer
        if writer is None or not self._nack_pts:
            return 0
        answered = rtx = 0
        now = time.monotonic()
        for out_seq in lost:
            entry = self._sent[out_seq % self._ring_size]
            if entry is None or entry[0] != out_seq:
                continue
            _, layer, in_seq, out_ts, head = entry
            cached = layer.cached(in_seq)
            if cached is None:
                continue
            route = self._route(cached.payload_type)
            if route is None:
                continue
            out_pt = route[0]
            rtx_pt = self._rtx_pt.get(out_pt)
            if rtx_pt is not None:
                data = writer.write(
                    cached,
                    payload_type=rtx_pt,
                    seq=self._out.next_rtx_seq(),
                    ts=out_ts,
                    ssrc=self._rtx_ssrc,
                    head=head,
                    osn=out_seq,
                    twcc_seq=self._twcc_seq(len(cached.payload) + 42, now),
                )
            else:
                data = writer.write(
                    cached,
                    payload_type=out_pt,
                    seq=out_seq,
                    ts=out_ts,
                    ssrc=self._ssrc,
                    head=head,
                    twcc_seq=self._twcc_seq(len(cached.payload) + 40, now),
                )
            if self._transmit(data):
                answered += 1
                rtx += rtx_pt is not None
                counters = self._stats
                counters.packets_out += 1
                counters.bytes_out += len(data)
                counters.packets_out_rtx += 1
                counters.bytes_out_rtx += len(data)
        self.rtx_sent += rtx
        self.nacks_answered += answered
        self._stats.nacks_answered += answered
        return answered

    # ---- sender reports

    def _sr_tick(self) -> None:
        if self._closed:
            return
        try:
            self.send_sender_report()
        except Exception as exc:
            self._context.errors.report("down_track.sr", exc, track=self._up.track_sid)
        finally:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(SR_INTERVAL_S * (0.5 + random.random()), self._sr_tick)

    def send_sender_report(self) -> bool:
        if not self._munger.started:
            return False
        current = self._forwarder.current
        now = time.monotonic()
        ntp, rtp = report_times(
            now=now,
            clock_rate=self._clock_rate,
            publisher_sr=current.sr if current is not None else None,
            ts_offset=self._munger.ts_offset,
            last_out_ts=self._munger.last_out_ts,
            last_out_time=self._munger.last_out_time,
        )
        data = build_sender_report(
            ssrc=self._ssrc, ntp=ntp, rtp=rtp, packets=self._out.packets, octets=self._out.octets
        )
        sent = self._transmit(data)
        if sent:
            if len(self._sr_sent) >= SR_MEMORY:
                self._sr_sent.pop(next(iter(self._sr_sent)))
            self._sr_sent[(ntp >> 16) & 0xFFFFFFFF] = now
        return sent


def _prefer_codec(transceiver: RTCRtpTransceiver, up: TrackSource) -> None:
    """Offer the publisher's codec first (all others follow, so late-known codecs still work)."""
    if not up.mime_type:
        return
    caps = RTCRtpSender.getCapabilities(up.kind).codecs
    first = [c for c in caps if c.mimeType.lower() == up.mime_type.lower()]
    if not first:
        return
    rest = [c for c in caps if c not in first]
    transceiver.setCodecPreferences(first + rest)
