"""What a subscriber sees on one sender's SSRCs, kept across the DownTracks that use that sender.

An m-line whose DownTrack closed may carry another DownTrack after renegotiation (the same
transceiver, so the same media and RTX SSRCs). The subscriber's SRTP context and jitter buffer know
those SSRCs: a new stream starting at a random sequence number is refused ("replay check failed
(index too old)") or looks like a huge loss. So the sequence/timestamp munger, the VP8 descriptor
munger, the RTX sequence number and the sender-report counters belong to the sender, not to the
DownTrack: the next DownTrack continues where the previous one stopped, as after a layer switch
(LiveKit seeds a reused transceiver's DownTrack the same way).

State is kept in the media context's ``OutStreams``, a ``WeakKeyDictionary`` keyed by the aiortc
sender; nothing in it refers back to the sender (nor to a DownTrack), so it goes away with the peer
connection.
"""

from __future__ import annotations

import random
from weakref import WeakKeyDictionary

from aiortc import RTCRtpSender

from parley.sfu.media.errors import SenderInUseError
from parley.sfu.media.rtp_munger import SEQ_MASK, RtpMunger
from parley.sfu.media.vp8_munger import Vp8Munger


class OutStream:
    """The output stream state of one sender (one media SSRC and its RTX SSRC)."""

    __slots__ = ("busy", "munger", "octets", "packets", "rtx_seq", "vp8")

    def __init__(self, clock_rate: int) -> None:
        self.munger = RtpMunger(clock_rate)
        self.vp8 = Vp8Munger()
        self.rtx_seq = random.randrange(0, 0x8000)
        self.packets = 0
        """RTP packets sent on the media SSRC (sender reports count from the SSRC's first packet)."""
        self.octets = 0
        self.busy = False
        """A DownTrack forwards on this sender now."""

    def next_rtx_seq(self) -> int:
        self.rtx_seq = (self.rtx_seq + 1) & SEQ_MASK
        return self.rtx_seq


class OutStreams:
    """One media context's output streams, by sender."""

    __slots__ = ("_streams",)

    def __init__(self) -> None:
        self._streams: WeakKeyDictionary[RTCRtpSender, OutStream] = WeakKeyDictionary()

    def claim(self, sender: RTCRtpSender, clock_rate: int) -> OutStream:
        """The sender's stream state for a new DownTrack; raises if another DownTrack still uses it."""
        stream = self._streams.get(sender)
        if stream is None:
            stream = self._streams[sender] = OutStream(clock_rate)
        elif stream.busy:
            raise SenderInUseError("the sender still carries an open DownTrack: close it first")
        stream.busy = True
        stream.munger.switch()
        stream.vp8.switch()
        return stream

    @staticmethod
    def release(stream: OutStream) -> None:
        stream.busy = False

    def peek(self, sender: RTCRtpSender) -> OutStream | None:
        """The state of a sender that carried a DownTrack (tests, debugging)."""
        return self._streams.get(sender)

    def __len__(self) -> int:
        return len(self._streams)
