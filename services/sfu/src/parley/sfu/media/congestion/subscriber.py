"""One send-side congestion controller per subscriber DTLS transport: transport-wide sequence numbers,
the send history, the estimate, stream allocation and probing.

Kept per (bundled) transport in the media context's ``TransportRegistry``, beside the transport's
``publisher_feedback.PublisherFeedback``: every DownTrack joins
the controller of its sender's transport and leaves it on close; the last one out stops the timers.
The transport's RTCP is tapped once (``aiortc_internals.tap_transport_rtcp``): TWCC feedback is
consumed here, REMB is read and still routed to the senders.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import unpack_remb_fci

from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media.congestion.allocator import Allocation, StreamAllocator, priority
from parley.sfu.media.congestion.config import CongestionConfig
from parley.sfu.media.congestion.estimator import SendSideEstimator
from parley.sfu.media.congestion.prober import Prober
from parley.sfu.media.congestion.send_history import SendHistory
from parley.sfu.media.congestion.twcc import (
    FMT_TWCC,
    REFERENCE_TICK_S,
    RTCP_PSFB,
    RTCP_RTPFB,
    Feedback,
    parse_feedback,
    unwrap_reference,
)
from parley.sfu.media.interfaces import NO_LAYER, Allocatable

if TYPE_CHECKING:
    from parley.sfu.media.context import MediaContext

MAX_PADDING_PACKETS = 64
"""Per track and probe tick."""


class SubscriberCongestion:
    """Use :meth:`join`; one instance per subscriber DTLS transport while it has down tracks."""

    def __init__(
        self, context: MediaContext, transport: RTCDtlsTransport, config: CongestionConfig | None = None
    ) -> None:
        self.context = context
        self.transport = transport
        self.config = config = config or context.congestion
        self.history = SendHistory()
        self.estimator = SendSideEstimator(config.estimator)
        self.allocator = StreamAllocator(config.allocator)
        self.prober = Prober(config.prober)
        self.video: list[Allocatable] = []
        self.audio: list[Allocatable] = []
        self.allocation: Allocation | None = None
        self.sending_bps = 0.0
        """Media (not probe padding) sent over the last tick."""
        self.feedback_received = 0
        self.feedback_errors = 0
        self.padding_sent = 0
        self.closed = False
        self._seq = 0
        self._probing = False
        self._media_bytes = 0
        self._rate_at: float | None = None
        self._reference: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._probe_timer: asyncio.TimerHandle | None = None

    # ---- membership

    @classmethod
    def join(
        cls, context: MediaContext, transport: RTCDtlsTransport, member: Allocatable, *, video: bool = True
    ) -> SubscriberCongestion:
        """Add a down track (audio tracks only reserve their bitrate); starts the tick timer when an
        event loop runs."""
        state = context.transports.state(transport)
        cc = state.congestion
        if cc is None:
            cc = state.congestion = cls(context, transport)
            internals.tap_transport_rtcp(
                transport, lambda pt, fmt, packet: _route_rtcp(context, transport, pt, fmt, packet)
            )
        members = cc.video if video else cc.audio
        if member not in members:
            members.append(member)
        if cc._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                cc._timer = loop.call_later(cc.config.tick_s, cc._tick)
        return cc

    def leave(self, member: Allocatable) -> None:
        self.video = [m for m in self.video if m is not member]
        self.audio = [m for m in self.audio if m is not member]
        self.allocator.forget(member.track_sid)
        if self.video or self.audio:
            return
        self.closed = True
        for timer in (self._timer, self._probe_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._probe_timer = None
        registry = self.context.transports
        state = registry.get(self.transport)
        if state is not None and state.congestion is self:
            state.congestion = None
            registry.discard_if_unused(self.transport)

    @staticmethod
    def for_transport(context: MediaContext, transport: RTCDtlsTransport) -> SubscriberCongestion | None:
        state = context.transports.get(transport)
        return state.congestion if state is not None else None

    # ---- the packet path (synchronous)

    def on_rtp_sent(self, size: int, now: float, probe: bool = False) -> int:
        """Every RTP packet sent on the transport (media, RTX, padding: ``probe=True`` for padding),
        ``size`` bytes long (approximate is fine), before it is written; returns the transport-wide
        sequence number to stamp into it."""
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        self.history.add(seq, now, size, probe or self._probing)
        if not probe:
            self._media_bytes += size
        return seq

    def on_feedback(self, feedback: bytes | Feedback, now: float) -> int:
        """A TWCC feedback packet (raw RTCP bytes or parsed); returns the estimate."""
        if isinstance(feedback, bytes):
            try:
                feedback = parse_feedback(feedback)
            except ValueError:
                self.feedback_errors += 1
                return self.estimate_bps
        self.feedback_received += 1
        reference = unwrap_reference(self._reference, feedback.reference_time)
        self._reference = reference
        offset = (reference - feedback.reference_time) * REFERENCE_TICK_S
        history = self.history
        results = []
        for seq, arrival in feedback.packets:
            result = history.result(seq, None if arrival is None else arrival + offset)
            if result is not None:
                results.append(result)
        return self.estimator.on_feedback(results, now) if results else self.estimate_bps

    def on_remb(self, bps: float, now: float) -> int:
        return self.estimator.on_remb(bps, now)

    @property
    def estimate_bps(self) -> int:
        return self.estimator.estimate

    # ---- allocation and probing

    def audio_bps(self, now: float) -> float:
        total = 0.0
        for member in self.audio:
            measured = member.layer_bitrates(now)
            total += measured[-1].bps if measured else self.config.allocator.audio_bps
        return total

    def tick(self, now: float) -> Allocation:
        """Measure the sending rate, allocate, decide on probing."""
        if self._rate_at is not None and now > self._rate_at:
            self.sending_bps = self._media_bytes * 8 / (now - self._rate_at)
        self._rate_at = now
        self._media_bytes = 0
        estimate = self.estimate_bps
        allocation = self.allocator.allocate(
            self.video, estimate_bps=estimate, audio_bps=self.audio_bps(now), now=now
        )
        self.prober.update(now, goal_bps=allocation.probe_goal_bps, estimate_bps=estimate)
        self._probing = self.prober.probing
        self.allocation = allocation
        return allocation

    def pad(self, now: float) -> int:
        """Send the padding the prober asks for now, on the forwarding video tracks in priority order;
        returns the bytes sent."""
        due = self.prober.padding_bytes(now, self.sending_bps)
        size = self.config.padding_size
        sent = 0
        layers = self.allocation.layers if self.allocation is not None else {}
        # forwarding tracks first; paused ones too (padding rides their RTX stream): when every video
        # track is paused for bandwidth, probing is the only way back up
        ordered = sorted(priority(self.video), key=lambda m: layers.get(m.track_sid, NO_LAYER) == NO_LAYER)
        for member in ordered:
            if due - sent < size:
                break
            count = min((due - sent) // size, MAX_PADDING_PACKETS)
            sent += member.send_padding(size, count)
        self.padding_sent += sent
        return sent

    def _tick(self) -> None:
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        try:
            self.tick(time.monotonic())
            if self._probing and self._probe_timer is None:
                self._probe_timer = loop.call_later(self.config.probe_tick_s, self._probe_tick)
        except Exception as exc:
            self.context.errors.report("congestion.tick", exc)
        finally:
            self._timer = None if self.closed else loop.call_later(self.config.tick_s, self._tick)

    def _probe_tick(self) -> None:
        self._probe_timer = None
        if self.closed or not self._probing:
            return
        try:
            self.pad(time.monotonic())
        except Exception as exc:
            self.context.errors.report("congestion.probe", exc)
        if not self.closed:
            self._probe_timer = asyncio.get_running_loop().call_later(
                self.config.probe_tick_s, self._probe_tick
            )


def _route_rtcp(
    context: MediaContext, transport: RTCDtlsTransport, packet_type: int, fmt: int, packet: bytes
) -> bool:
    """The RTCP tap of a subscriber transport: consume TWCC feedback, read REMB (still routed)."""
    if fmt != FMT_TWCC or packet_type not in (RTCP_RTPFB, RTCP_PSFB):
        return False
    try:
        cc = SubscriberCongestion.for_transport(context, transport)
        if packet_type == RTCP_RTPFB:
            if cc is not None:
                cc.on_feedback(packet, time.monotonic())
            return True
        if cc is not None and packet[12:16] == b"REMB":
            cc.on_remb(unpack_remb_fci(packet[12:])[0], time.monotonic())
    except Exception as exc:
        context.errors.report("congestion.rtcp", exc)
    return False
