"""A small reorder buffer for one RTP stream (16-bit sequence numbers, wraparound).

``push`` returns the packets that can be released in order. A missing packet is waited for while
the buffer holds fewer than ``capacity`` packets and for at most ``max_delay`` seconds; then the gap
is skipped. Duplicates and packets older than the last released one are dropped. ``missing()``
names the sequence numbers awaited now, each once (the caller NACKs them).
"""

from __future__ import annotations

from aiortc.rtp import RtpPacket


def _newer(a: int, b: int) -> bool:
    """a is after b (mod 2^16)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class ReorderBuffer:
    def __init__(self, capacity: int = 64, max_delay: float = 0.2) -> None:
        self._capacity = capacity
        self._max_delay = max_delay
        self._next: int | None = None
        self._held: dict[int, RtpPacket] = {}
        self._gap_since: float | None = None
        self._reported: set[int] = set()
        self.dropped = 0
        self.skipped = 0

    def push(self, packet: RtpPacket, now: float) -> list[RtpPacket]:
        seq = packet.sequence_number
        if self._next is None:
            self._next = seq
        if (seq != self._next and not _newer(seq, self._next)) or seq in self._held:
            self.dropped += 1  # a duplicate, or older than what was released
            return []
        self._held[seq] = packet
        out = self._release()
        if self._held:
            if self._gap_since is None:
                self._gap_since = now
            if len(self._held) >= self._capacity or now - self._gap_since >= self._max_delay:
                self._skip()
                out += self._release()
        if not self._held:
            self._gap_since = None
        return out

    def _release(self) -> list[RtpPacket]:
        out = []
        assert self._next is not None
        while self._next in self._held:
            out.append(self._held.pop(self._next))
            self._reported.discard(self._next)
            self._next = (self._next + 1) & 0xFFFF
        return out

    def _skip(self) -> None:
        """Jump to the oldest held packet."""
        assert self._next is not None
        base = self._next
        oldest = min(self._held, key=lambda s: (s - base) & 0xFFFF)
        self.skipped += (oldest - base) & 0xFFFF
        self._reported = {s for s in self._reported if _newer(s, oldest)}
        self._next = oldest
        self._gap_since = None

    def missing(self) -> list[int]:
        """Sequence numbers awaited now and not reported before."""
        if not self._held or self._next is None:
            return []
        base = self._next
        newest = max(self._held, key=lambda s: (s - base) & 0xFFFF)
        lost = []
        seq = base
        while seq != newest:
            if seq not in self._held and seq not in self._reported:
                lost.append(seq)
                self._reported.add(seq)
            seq = (seq + 1) & 0xFFFF
        return lost
