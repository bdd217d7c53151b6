"""One REMB per publisher peer connection, covering every SSRC it receives (all tracks, all simulcast
layers, RTX and padding): packet accounting, the loss-based estimate (``bwe.py``), and sending.

Keyed by the receivers' (bundled) DTLS transport in the media context's ``TransportRegistry``: every
``UpTrack`` joins the feedback of its receiver's transport and leaves it on close. Every RTP packet
is counted before anything else looks at it (RTX padding used for probing included), so probes that
are then dropped still count as received. The first packet of a peer connection sends the start
estimate right away (libwebrtc adopts it during its 2 s start phase); then a REMB goes out every
``INTERVAL_S``, after judging the loss of that window.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media.bwe import LossBasedEstimator

if TYPE_CHECKING:
    from parley.sfu.media.context import MediaContext

INTERVAL_S = 0.5
"""Loss window and REMB period."""
FORGET_AFTER_S = 10.0
"""A stream without packets for this long is no longer accounted (nor listed in the REMB)."""
MAX_REMB_SSRCS = 255


class FeedbackMember(Protocol):
    """An UpTrack as the feedback sees it."""

    @property
    def feedback_ssrc(self) -> int | None:
        """The sender SSRC of our RTCP on this peer connection (None before negotiation)."""


class _Stream:
    """Sequence-number accounting of one SSRC (RFC 3550 A.3, without probation)."""

    __slots__ = ("last_seen", "max_seq", "media", "received", "window_max", "window_received")

    def __init__(self, seq: int, now: float, media: bool) -> None:
        self.max_seq = seq  # extended with the cycle count
        self.received = 0
        self.window_max = seq - 1
        self.window_received = 0
        self.last_seen = now
        self.media = media

    def add(self, seq: int, now: float) -> None:
        delta = (seq - self.max_seq) & 0xFFFF
        if 0 < delta < 0x8000:
            self.max_seq += delta
        self.received += 1
        self.last_seen = now

    def window(self) -> tuple[int, int]:
        """(expected, lost) since the previous call."""
        expected = self.max_seq - self.window_max
        received = self.received - self.window_received
        self.window_max = self.max_seq
        self.window_received = self.received
        return expected, max(expected - received, 0)


class PublisherFeedback:
    """Use :meth:`join`; one instance per publisher DTLS transport while it has UpTracks."""

    def __init__(self, context: MediaContext, transport: RTCDtlsTransport) -> None:
        self.context = context
        self.transport = transport
        self.estimator = LossBasedEstimator(context.bwe)
        self._members: list[FeedbackMember] = []
        self._streams: dict[int, _Stream] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._bytes = 0
        self._window_started = time.monotonic()
        self.incoming_bps = 0.0
        """Bitrate received in the last window (every packet, headers approximated)."""
        self.rembs_sent = 0
        self.closed = False

    # ---- membership

    @classmethod
    def join(
        cls, context: MediaContext, transport: RTCDtlsTransport, member: FeedbackMember
    ) -> PublisherFeedback:
        state = context.transports.state(transport)
        feedback = state.feedback
        if feedback is None:
            feedback = state.feedback = cls(context, transport)
        if member not in feedback._members:
            feedback._members.append(member)
        return feedback

    def leave(self, member: FeedbackMember) -> None:
        self._members = [m for m in self._members if m is not member]
        if self._members:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        registry = self.context.transports
        state = registry.get(self.transport)
        if state is not None and state.feedback is self:
            state.feedback = None
            registry.discard_if_unused(self.transport)

    @staticmethod
    def for_transport(context: MediaContext, transport: RTCDtlsTransport) -> PublisherFeedback | None:
        state = context.transports.get(transport)
        return state.feedback if state is not None else None

    # ---- the packet path (synchronous)

    def on_packet(self, ssrc: int, seq: int, size: int, media: bool, now: float) -> None:
        """Every RTP packet received on the transport, before RTX unwrapping or dropping."""
        self._bytes += size
        stream = self._streams.get(ssrc)
        if stream is not None:
            stream.add(seq, now)
            return
        self._streams[ssrc] = stream = _Stream(seq, now, media)
        stream.add(seq, now)
        if self._timer is None and not self.closed:  # the first packet: tell the start estimate now
            self._window_started = now
            self.send_remb()
            self._timer = asyncio.get_running_loop().call_later(INTERVAL_S, self._tick)

    # ---- the window

    def _tick(self) -> None:
        if self.closed:
            return
        try:
            self.update(time.monotonic())
            self.send_remb()
        except Exception as exc:
            self.context.errors.report("publisher_feedback.tick", exc)
        finally:
            if not self.closed:
                self._timer = asyncio.get_running_loop().call_later(INTERVAL_S, self._tick)

    def update(self, now: float) -> int:
        """Close the current window: incoming rate, loss over every stream, new estimate."""
        elapsed = max(now - self._window_started, 1e-3)
        self.incoming_bps = self._bytes * 8 / elapsed
        self._bytes = 0
        self._window_started = now
        expected = lost = 0
        for ssrc, stream in list(self._streams.items()):
            if now - stream.last_seen > FORGET_AFTER_S:
                del self._streams[ssrc]
                continue
            e, lo = stream.window()
            expected += e
            lost += lo
        self.context.stats.packets_lost_in += lost
        return self.estimator.update(expected=expected, lost=lost, now=now)

    def ssrcs(self) -> list[int]:
        """Media SSRCs the REMB applies to (every simulcast layer of every track)."""
        return [ssrc for ssrc, s in self._streams.items() if s.media][:MAX_REMB_SSRCS]

    def send_remb(self) -> bool:
        sender = next((m.feedback_ssrc for m in self._members if m.feedback_ssrc is not None), None)
        if sender is None:
            return False
        fci = pack_remb_fci(self.estimator.estimate, self.ssrcs())
        packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=sender, media_ssrc=0, fci=fci)
        try:
            sent = internals.send_rtp_sync(self.transport, bytes(packet))
        except ConnectionError:
            return False
        self.rembs_sent += int(sent)
        return sent
