"""One (subscriber, track): forwards an UpTrack's RTP to a subscriber's track-less aiortc sender.

The output stream (sequence numbers, timestamps, VP8 picture ids, RTX sequence numbers, SR counters)
belongs to the sender (``out_stream.py``), so a DownTrack attached to a transceiver whose previous
DownTrack closed continues that SSRC's stream instead of restarting it.
"""

from __future__ import annotations

import asyncio
import random
import time

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
from parley.sfu.media import out_stream
from parley.sfu.media.guard import report_error
from parley.sfu.media.layers import Layer
from parley.sfu.media.rtp_writer import RtpWriter
from parley.sfu.media.sender_report import build_sender_report, report_times
from parley.sfu.media.settings import settings
from parley.sfu.media.stats import STATS
from parley.sfu.media.up_track import UpTrack

SR_INTERVAL_S = 1.0
_Sent = tuple[int, Layer, int, int, bytes]
"""(out seq, source layer, source seq, out timestamp, rewritten payload head) of a sent packet, for NACKs."""
_Route = tuple[int, bool]
"""(out payload type, is VP8) of an incoming payload type."""


def _has_nack(codec: RTCRtpCodecParameters) -> bool:
    return any(fb.type == "nack" and not fb.parameter for fb in codec.rtcpFeedback)


def _codec_matches(a: RTCRtpCodecParameters, b: RTCRtpCodecParameters) -> bool:
    if a.mimeType.lower() != b.mimeType.lower() or a.clockRate != b.clockRate:
        return False
    if a.mimeType.lower() == "video/h264":
        return a.parameters.get("packetization-mode", "0") == b.parameters.get("packetization-mode", "0")
    return True


class DownTrack:
    """Create with :meth:`attach`. Forwards without decoding; see media-contract.md."""

    def __init__(self, transceiver: RTCRtpTransceiver, up: UpTrack) -> None:
        self._transceiver = transceiver
        self._sender: RTCRtpSender = transceiver.sender
        self._up = up
        self._ssrc = internals.sender_ssrc(self._sender)
        self._rtx_ssrc = internals.sender_rtx_ssrc(self._sender)
        self._video = up.kind == "video"
        self._clock_rate = 90000 if self._video else 48000
        self._out = out_stream.claim(self._sender, self._clock_rate)
        self._munger = self._out.munger
        self._vp8 = self._out.vp8
        self._writer: RtpWriter | None = None
        self._transport: RTCDtlsTransport | None = None
        self._codecs: list[RTCRtpCodecParameters] = []
        self._pt_map: dict[int, _Route | None] = {}
        self._rtx_pt: dict[int, int] = {}
        """Out payload type -> its RTX payload type, when the subscriber negotiated RTX for it."""
        self._nack_pts: set[int] = set()
        """Out payload types whose NACKs are answered (video always; audio only if negotiated)."""
        self._current: Layer | None = None
        self._paused = False
        self._closed = False
        self._ring_size = settings().packet_cache_size
        self._sent: list[_Sent | None] = [None] * self._ring_size
        self._timer: asyncio.TimerHandle | None = None
        self.packets_sent = 0
        self.octets_sent = 0
        self.nacks_answered = 0
        self.rtx_sent = 0
        self.keyframe_requests_received = 0
        self.remb_bps: int | None = None
        self.fraction_lost = 0

    @classmethod
    def attach(
        cls,
        pc: RTCPeerConnection,
        up: UpTrack,
        *,
        stream_id: str,
        track_id: str,
        transceiver: RTCRtpTransceiver | None = None,
    ) -> DownTrack:
        """Forward ``up`` to ``pc``: a new sendonly transceiver (call before createOffer), or the given
        one (v1: the client's recvonly m-line, before createAnswer; v0/v1: an m-line whose previous
        DownTrack was closed, whose stream then continues). Raises ``SenderInUseError`` if the
        transceiver's DownTrack is still open."""
        if transceiver is None:
            transceiver = pc.addTransceiver(up.kind, direction="sendonly")
            _prefer_codec(transceiver, up)
        down = cls(transceiver, up)  # claims the sender's stream (raises if it is still in use)
        if transceiver.direction in ("recvonly", "inactive"):
            transceiver.direction = "sendonly"
        internals.set_sender_msid(transceiver.sender, stream_id, track_id)
        internals.hook_sender(transceiver.sender, on_rtcp=down._on_rtcp, on_parameters=down._on_parameters)
        up.add_down_track(down)
        STATS.tracks_out += 1
        return down

    # ---- contract properties

    @property
    def transceiver(self) -> RTCRtpTransceiver:
        return self._transceiver

    @property
    def up_track(self) -> UpTrack:
        return self._up

    @property
    def ssrc(self) -> int:
        return self._ssrc

    @property
    def current_layer(self) -> str | None:
        return self._current.rid if self._current is not None else None

    @property
    def paused(self) -> bool:
        return self._paused

    @paused.setter
    def paused(self, value: bool) -> None:
        if value == self._paused:
            return
        self._paused = value
        if not value:  # resume: a new segment, starting at a keyframe
            self._current = None
            self._up.request_keyframe(self._up.best)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._up.remove_down_track(self)
        out_stream.release(self._out)
        STATS.tracks_out -= 1
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
        if self._timer is None and not self._closed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(SR_INTERVAL_S * random.random(), self._sr_tick)
        self._up.request_keyframe(self._up.best)

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
        """Called by the UpTrack for every received packet of every layer."""
        if self._paused or self._writer is None:
            return
        current = self._current
        if layer is not current:
            if layer is not self._up.best:
                return
            if not keyframe:
                self._up.request_keyframe(layer, now)
                return
            self._current = layer
            self._munger.switch()
            self._vp8.switch()
        elif self._video:
            best = self._up.best
            if best is not None and best is not current:
                self._up.request_keyframe(best, now)  # throttled; we switch on its next keyframe
        route = self._route(packet.payload_type)
        if route is None:
            STATS.packets_dropped += 1
            return
        munger = self._munger
        mapped = munger.map(packet.sequence_number, packet.timestamp, now)
        if mapped is None:
            return
        out_pt, vp8 = route
        out_seq, out_ts = mapped
        head = self._vp8.rewrite(packet.payload, out_seq == munger.last_out_seq) if vp8 else b""
        data = self._writer.write(
            packet, payload_type=out_pt, seq=out_seq, ts=out_ts, ssrc=self._ssrc, head=head
        )
        if self._transmit(data):
            self.packets_sent += 1
            self.octets_sent += len(packet.payload)
            self._out.packets += 1
            self._out.octets += len(packet.payload)
            STATS.packets_out += 1
            STATS.bytes_out += len(data)
        if out_pt in self._nack_pts:
            self._sent[out_seq % self._ring_size] = (out_seq, layer, packet.sequence_number, out_ts, head)

    def skip(self, layer: Layer, seq: int) -> None:
        """A packet of ``layer`` that is not forwarded (padding)."""
        if layer is self._current:
            self._munger.drop(seq)

    def _transmit(self, data: bytes) -> bool:
        transport = self._transport
        if transport is None:
            return False
        try:
            return internals.send_rtp_sync(transport, data)
        except ConnectionError:
            return False

    # ---- RTCP from the subscriber

    def _on_rtcp(self, packet: AnyRtcpPacket) -> None:
        if self._closed:
            return
        try:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self.answer_nack(packet.lost)
            elif isinstance(packet, RtcpPsfbPacket):
                if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                    self.keyframe_requests_received += 1
                    self._up.request_keyframe(self._current or self._up.best)
                elif packet.fmt == RTCP_PSFB_APP:
                    self.remb_bps = unpack_remb_fci(packet.fci)[0]
            elif isinstance(packet, RtcpRrPacket):
                for report in packet.reports:
                    if report.ssrc == self._ssrc:
                        self.fraction_lost = report.fraction_lost
        except Exception as exc:
            report_error("down_track.rtcp", exc, track=self._up.track_sid)

    def answer_nack(self, lost: list[int]) -> int:
        """Retransmit the packets a subscriber reported lost from the UpTrack's cache: as RTX (RFC 4588,
        own SSRC and sequence numbers) when the subscriber negotiated RTX for the codec, else as the
        original packet. Audio only when the subscriber negotiated ``nack`` for the audio codec."""
        writer = self._writer
        if writer is None or not self._nack_pts:
            return 0
        answered = rtx = 0
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
                )
            else:
                data = writer.write(
                    cached, payload_type=out_pt, seq=out_seq, ts=out_ts, ssrc=self._ssrc, head=head
                )
            if self._transmit(data):
                answered += 1
                rtx += rtx_pt is not None
                STATS.packets_out += 1
                STATS.bytes_out += len(data)
        self.rtx_sent += rtx
        self.nacks_answered += answered
        STATS.nacks_answered += answered
        return answered

    # ---- sender reports

    def _sr_tick(self) -> None:
        if self._closed:
            return
        try:
            self.send_sender_report()
        except Exception as exc:
            report_error("down_track.sr", exc, track=self._up.track_sid)
        finally:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(SR_INTERVAL_S * (0.5 + random.random()), self._sr_tick)

    def send_sender_report(self) -> bool:
        if not self._munger.started:
            return False
        current = self._current
        ntp, rtp = report_times(
            now=time.monotonic(),
            clock_rate=self._clock_rate,
            publisher_sr=current.sr if current is not None else None,
            ts_offset=self._munger.ts_offset,
            last_out_ts=self._munger.last_out_ts,
            last_out_time=self._munger.last_out_time,
        )
        data = build_sender_report(
            ssrc=self._ssrc, ntp=ntp, rtp=rtp, packets=self._out.packets, octets=self._out.octets
        )
        return self._transmit(data)


def _prefer_codec(transceiver: RTCRtpTransceiver, up: UpTrack) -> None:
    """Offer the publisher's codec first (all others follow, so late-known codecs still work)."""
    if not up.mime_type:
        return
    caps = RTCRtpSender.getCapabilities(up.kind).codecs
    first = [c for c in caps if c.mimeType.lower() == up.mime_type.lower()]
    if not first:
        return
    rest = [c for c in caps if c not in first]
    transceiver.setCodecPreferences(first + rest)
