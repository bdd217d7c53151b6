"""Recently received RTP packets of one stream, by sequence number, for answering NACKs."""

from __future__ import annotations

from aiortc.rtp import RtpPacket


class PacketCache:
    """A ring of ``size`` packets indexed by ``seq % size``; an entry is valid only for its own seq."""

    __slots__ = ("_ring", "_size")

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("cache size must be positive")
        self._size = size
        self._ring: list[RtpPacket | None] = [None] * size

    @property
    def size(self) -> int:
        return self._size

    def put(self, packet: RtpPacket) -> None:
        """Keep ``packet`` (never mutated afterwards: the forwarding path only reads packets)."""
        self._ring[packet.sequence_number % self._size] = packet

    def get(self, seq: int) -> RtpPacket | None:
        packet = self._ring[seq % self._size]
        if packet is None or packet.sequence_number != seq:
            return None
        return packet
