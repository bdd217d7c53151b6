"""An RTP tap: a plain (unencrypted) RTP copy of one published track, sent over UDP (egress).

Like mediasoup's PlainTransport. An :class:`RtpTap` is a ``PacketSink`` of an ``UpTrack``, attached
like a ``DownTrack``, with its own ``Forwarder`` (so its own ``SimulcastSelector`` and munger) and its
own output stream: one SSRC and one payload type whatever layer is forwarded. The forwarder is never
limited (no subscriber request, no stream allocator), so video follows the highest active layer and
every switch is munged (sequence numbers, timestamps, VP8 PictureID/TL0PICIDX/KEYIDX continue).
Video starts on a keyframe (the selector drops until one comes); the publisher is asked for one at
once.

One UDP socket per tap, bound to ``sfu.tap_bind_host`` on an ephemeral port and connected to the
receiver's ``host:port`` (so only that address's datagrams are read). RTCP comes back on the same
socket (rtcp-mux): PLI/FIR ask the publisher for a keyframe, NACKs are answered from the up track's
packet cache (same SSRC and sequence number, no RTX), a BYE ends the tap, and every RTCP packet
counts as a sign of life: none for ``rtcp_timeout`` seconds ends the tap. A sender report goes out
every ``TICK_S`` once media flows (it gives the receiver the NTP time of the RTP timestamps: the
publisher's own SR mapped through the munger when known, as for subscribers).

Per packet (``forward``) everything is synchronous; a failed ``sendto`` is counted
(``send_errors``) and never raised into the up track. A muted tap sends nothing. :meth:`RtpTap.end`
sends an RTCP BYE and closes the socket; ``on_end`` is told once, with the reason.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    is_rtcp,
)

from parley.observability import get_logger
from parley.sfu.media.context import MediaContext
from parley.sfu.media.errors import TapError
from parley.sfu.media.forwarder import Forwarder
from parley.sfu.media.interfaces import TrackSource
from parley.sfu.media.layers import Layer
from parley.sfu.media.out_stream import OutStream
from parley.sfu.media.rtp_writer import RtpWriter
from parley.sfu.media.sender_report import build_sender_report, report_times

log = get_logger("parley.sfu.media.tap")

RTCP_TIMEOUT_S = 5.0
"""A tap whose receiver sent no RTCP for this long ends (its receiver is gone)."""
TICK_S = 1.0
"""Liveness check and sender report interval (shorter for an ``rtcp_timeout`` under 2 s)."""

EndListener = Callable[["RtpTap", str], None]
"""(tap, reason): the tap ended (told once)."""
_Sent = tuple[int, Layer, int, int, bytes]
"""(out seq, source layer, source seq, out timestamp, rewritten payload head), for NACKs."""


@dataclass(frozen=True, slots=True)
class TapCodec:
    """What the tap's RTP carries (the publisher's codec: never transcoded)."""

    mime_type: str
    payload_type: int
    clock_rate: int
    channels: int
    fmtp: str


def tap_codec(source: TrackSource) -> TapCodec | None:
    """The codec of ``source``'s latest packet (before any: its first negotiated codec), with the
    publisher's payload type; None when the track has no codec yet."""
    mime = source.mime_type.lower()
    for pt, codec in sorted(source.codecs.items()):
        if mime and codec.mimeType.lower() == mime:
            return TapCodec(
                mime_type=codec.mimeType,
                payload_type=pt,
                clock_rate=codec.clockRate,
                channels=codec.channels or 0,
                fmtp=_fmtp(codec),
            )
    return None


def _fmtp(codec: RTCRtpCodecParameters) -> str:
    """The codec's ``a=fmtp`` value (aiortc's parameter order)."""
    return ";".join(k if v is None else f"{k}={v}" for k, v in codec.parameters.items())


class _Endpoint(asyncio.DatagramProtocol):
    """The tap's socket: datagrams (RTCP from the receiver) and send errors go to the tap."""

    def __init__(self) -> None:
        self.tap: RtpTap | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.tap is not None:
            self.tap.on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        if self.tap is not None:
            self.tap.send_errors += 1  # e.g. ICMP port unreachable: the receiver is not there (yet)


class RtpTap:
    """Create with :meth:`open`. A ``PacketSink`` (``interfaces.py``) of ``source``."""

    def __init__(
        self,
        source: TrackSource,
        transport: asyncio.DatagramTransport,
        codec: TapCodec,
        *,
        context: MediaContext,
        rtcp_timeout: float = RTCP_TIMEOUT_S,
        on_end: EndListener | None = None,
        muted: bool = False,
        fields: dict[str, str] | None = None,
    ) -> None:
        self._source = source
        self._transport = transport
        self._context = context
        self.codec = codec
        self._video = source.kind == "video"
        self._vp8 = codec.mime_type.lower() == "video/vp8"
        self.ssrc = random.randrange(1, 1 << 32)
        self._out = OutStream(codec.clock_rate)
        self._munger = self._out.munger
        self._forwarder = Forwarder(source, self._out, video=self._video)
        self._forwarder.set_muted(muted)
        self._writer = RtpWriter({}, None)  # no header extensions: a plain RTP header
        self._in_pt = -1
        """The last payload type accepted (the codec's, or one renegotiated to the same codec)."""
        self._ring_size = context.packet_cache_size
        self._sent: list[_Sent | None] = [None] * self._ring_size
        self._rtcp_timeout = rtcp_timeout
        self._tick_s = min(TICK_S, rtcp_timeout / 2)
        self._on_end = on_end
        self._fields = fields or {}
        self.rtcp_at = time.monotonic()
        """When the receiver last sent RTCP (the start counts as one)."""
        self.ended: str | None = None
        """Why the tap ended (None while it runs)."""
        self.packets_sent = 0
        self.send_errors = 0
        self.packets_dropped = 0
        """Packets of another codec than the tap's."""
        self.rtcp_received = 0
        self.keyframe_requests_received = 0
        self.nacks_answered = 0
        sockname = transport.get_extra_info("sockname")
        self.source_host: str = sockname[0]
        self.source_port: int = sockname[1]
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            self._tick_s, self._tick
        )

    @classmethod
    async def open(
        cls,
        source: TrackSource,
        *,
        host: str,
        port: int,
        bind_host: str,
        context: MediaContext,
        rtcp_timeout: float = RTCP_TIMEOUT_S,
        on_end: EndListener | None = None,
        muted: bool = False,
        fields: dict[str, str] | None = None,
    ) -> RtpTap:
        """A tap of ``source`` sending to ``host:port`` from a socket bound to ``bind_host`` (port 0),
        attached to ``source`` at once. Raises ``TapError`` when the track has no codec yet or the
        socket cannot be opened."""
        codec = tap_codec(source)
        if codec is None:
            raise TapError(f"track {source.track_sid} has no codec yet")
        loop = asyncio.get_running_loop()
        endpoint = _Endpoint()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: endpoint, local_addr=(bind_host, 0), remote_addr=(host, port)
            )
        except (OSError, ValueError) as exc:
            raise TapError(f"cannot open a tap socket from {bind_host} to {host}:{port}: {exc}") from exc
        tap = cls(
            source,
            transport,
            codec,
            context=context,
            rtcp_timeout=rtcp_timeout,
            on_end=on_end,
            muted=muted,
            fields=fields,
        )
        endpoint.tap = tap
        source.add_sink(tap)
        if tap._video and not muted:
            source.request_keyframe(None)
        return tap

    # ---- state

    @property
    def muted(self) -> bool:
        return self._forwarder.muted

    def set_muted(self, muted: bool) -> None:
        """A muted tap sends nothing; unmuted, video resumes on a keyframe (asked for now)."""
        if muted == self._forwarder.muted or self.ended is not None:
            return
        self._forwarder.set_muted(muted)
        if not muted and self._video:
            self._source.request_keyframe(None)

    @property
    def current_layer(self) -> Layer | None:
        return self._forwarder.current

    # ---- the packet path (synchronous)

    def forward(self, layer: Layer, packet: RtpPacket, keyframe: bool, now: float) -> None:
        pt = packet.payload_type
        if pt != self._in_pt and not self._accepts(pt):
            self.packets_dropped += 1
            return
        forwarded = self._forwarder.forward(layer, packet, keyframe, now, self._vp8)
        if forwarded is None:
            return
        out_seq, out_ts, head = forwarded
        data = self._writer.write(
            packet, payload_type=self.codec.payload_type, seq=out_seq, ts=out_ts, ssrc=self.ssrc, head=head
        )
        if self._send(data):
            self.packets_sent += 1
            self._out.packets += 1
            self._out.octets += len(packet.payload)
        self._sent[out_seq % self._ring_size] = (out_seq, layer, packet.sequence_number, out_ts, head)

    def skip(self, layer: Layer, seq: int) -> None:
        self._forwarder.skip(layer, seq)

    def _accepts(self, pt: int) -> bool:
        codec = self._source.codecs.get(pt)
        if codec is None or codec.mimeType.lower() != self.codec.mime_type.lower():
            return False
        if codec.clockRate != self.codec.clock_rate:
            return False
        self._in_pt = pt
        return True

    def _send(self, data: bytes) -> bool:
        try:
            self._transport.sendto(data)
        except Exception:
            self.send_errors += 1
            return False
        return True

    # ---- RTCP from the receiver

    def on_datagram(self, data: bytes) -> None:
        if self.ended is not None:
            return
        try:
            self._on_rtcp(data)
        except Exception as exc:
            self._context.errors.report("tap.rtcp", exc, **self._fields)

    def _on_rtcp(self, data: bytes) -> None:
        if not is_rtcp(data):
            return
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            return
        self.rtcp_at = time.monotonic()
        self.rtcp_received += 1
        for packet in packets:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                self.keyframe_requests_received += 1
                self._source.request_keyframe(self._forwarder.current or self._forwarder.target)
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self.answer_nack(packet.lost)
            elif isinstance(packet, RtcpByePacket):
                self.end("receiver sent BYE", bye=False)
                return

    def answer_nack(self, lost: list[int]) -> int:
        """Send the packets the receiver reported lost again, from the up track's cache (the same
        sequence numbers; packets no longer cached are skipped)."""
        answered = 0
        for out_seq in lost:
            entry = self._sent[out_seq % self._ring_size]
            if entry is None or entry[0] != out_seq:
                continue
            _, layer, in_seq, out_ts, head = entry
            cached = layer.cached(in_seq)
            if cached is None:
                continue
            data = self._writer.write(
                cached,
                payload_type=self.codec.payload_type,
                seq=out_seq,
                ts=out_ts,
                ssrc=self.ssrc,
                head=head,
            )
            answered += self._send(data)
        self.nacks_answered += answered
        return answered

    # ---- timer: liveness and sender reports

    def _tick(self) -> None:
        self._timer = None
        if self.ended is not None:
            return
        try:
            if time.monotonic() - self.rtcp_at > self._rtcp_timeout:
                self.end(f"no RTCP for {self._rtcp_timeout:g} s")
                return
            self.send_sender_report()
        except Exception as exc:
            self._context.errors.report("tap.tick", exc, **self._fields)
        if self.ended is None:
            self._timer = asyncio.get_running_loop().call_later(self._tick_s, self._tick)

    def send_sender_report(self) -> bool:
        if not self._munger.started:
            return False
        current = self._forwarder.current
        ntp, rtp = report_times(
            now=time.monotonic(),
            clock_rate=self.codec.clock_rate,
            publisher_sr=current.sr if current is not None else None,
            ts_offset=self._munger.ts_offset,
            last_out_ts=self._munger.last_out_ts,
            last_out_time=self._munger.last_out_time,
        )
        return self._send(
            build_sender_report(
                ssrc=self.ssrc, ntp=ntp, rtp=rtp, packets=self._out.packets, octets=self._out.octets
            )
        )

    # ---- end

    def end(self, reason: str, *, bye: bool = True) -> None:
        """Detach from the source, send an RTCP BYE (unless ``bye`` is False), close the socket."""
        if self.ended is not None:
            return
        self.ended = reason
        self._source.remove_sink(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if bye:
            self._send(bytes(RtcpByePacket(sources=[self.ssrc])))
        self._transport.close()
        log.info(
            "tap ended",
            reason=reason,
            packets=self.packets_sent,
            send_errors=self.send_errors,
            nacks_answered=self.nacks_answered,
            keyframe_requests=self.keyframe_requests_received,
            **self._fields,
        )
        if self._on_end is not None:
            self._on_end(self, reason)
