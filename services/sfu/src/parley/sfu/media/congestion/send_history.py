"""What was sent on a subscriber's transport, by transport-wide sequence number (a bounded ring).

The ring has a power-of-two size below 2^16, so a slot that still holds a 16-bit sequence number holds
the latest packet with that number: feedback for an overwritten packet finds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SIZE = 8192
"""About 8 s at 1000 packets/s (10 Mbit/s of 1200-byte packets)."""


@dataclass(frozen=True, slots=True)
class PacketResult:
    """A sent packet and what the feedback said about it."""

    seq: int
    sent_at: float
    """Our monotonic clock, seconds."""
    size: int
    """Bytes on the wire (RTP header and payload; SRTP/UDP overhead not included)."""
    probe: bool
    """Sent during a probe cluster."""
    arrival: float | None
    """The receiver's clock, seconds (only differences are meaningful); None: lost."""


class SendHistory:
    """``add`` on the packet path; ``result`` when feedback arrives (each packet is reported once)."""

    __slots__ = ("_mask", "_probe", "_reported", "_seqs", "_sizes", "_times")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size <= 0 or size & (size - 1) or size > 0x8000:
            raise ValueError("size must be a power of two, at most 32768")
        self._mask = size - 1
        self._seqs = [-1] * size
        self._times = [0.0] * size
        self._sizes = [0] * size
        self._probe = [False] * size
        self._reported = [False] * size

    def add(self, seq: int, sent_at: float, size: int, probe: bool) -> None:
        i = seq & self._mask
        self._seqs[i] = seq
        self._times[i] = sent_at
        self._sizes[i] = size
        self._probe[i] = probe
        self._reported[i] = False

    def result(self, seq: int, arrival: float | None) -> PacketResult | None:
        """The packet ``seq`` with its arrival, the first time feedback reports it (None: unknown, or
        reported already; a packet reported lost and later received counts as lost)."""
        i = seq & self._mask
        if self._seqs[i] != seq or self._reported[i]:
            return None
        self._reported[i] = True
        return PacketResult(seq, self._times[i], self._sizes[i], self._probe[i], arrival)
