"""The worker's end of an SFU RTP tap: one UDP socket (RTP in, RTCP both ways).

Packets (``datagram_received``) go synchronously to the sink (the recorder). RTCP from the SFU: a
BYE means the source closed (unpublished, the publisher left, the room moved); sender reports are
ignored. To the SFU (its ``source_host:source_port``, learnt from TapTrack's answer): a receiver
report every second (the tap's keep-alive: the SFU ends a tap that hears nothing for 5 s), PLI while
the recorder waits for a keyframe, NACK for what the reorder buffer misses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

from aiortc.rtp import (
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    is_rtcp,
)

PacketSink = Callable[[RtpPacket, float], None]


class TapReceiver(asyncio.DatagramProtocol):
    """Create with :meth:`open`; ``source`` is set once TapTrack answered."""

    def __init__(self, sink: PacketSink) -> None:
        self._sink = sink
        self.transport: asyncio.DatagramTransport | None = None
        self.source: tuple[str, int] | None = None
        self.media_ssrc = 0
        self.ssrc = 0x5041524C  # "PARL": the receiver's own SSRC in its RTCP
        self.bye = asyncio.Event()
        self.packets = 0
        self.last_packet_at: float | None = None
        self.rtcp_sent = 0

    @classmethod
    async def open(cls, host: str, sink: PacketSink) -> TapReceiver:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(lambda: cls(sink), local_addr=(host, 0))
        return protocol

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's and asyncio's

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.source is not None and (addr[0], addr[1]) != self.source:
            return  # only the tap's own socket is heard
        if is_rtcp(data):
            try:
                packets = RtcpPacket.parse(data)
            except ValueError:
                return
            if any(isinstance(p, RtcpByePacket) for p in packets):
                self.bye.set()
            return
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            return
        now = time.monotonic()
        self.packets += 1
        self.last_packet_at = now
        self.media_ssrc = packet.ssrc
        self._sink(packet, now)

    def _send(self, packet: Any) -> None:
        if self.transport is None or self.source is None or self.transport.is_closing():
            return
        self.transport.sendto(bytes(packet), self.source)
        self.rtcp_sent += 1

    def send_receiver_report(self) -> None:
        self._send(RtcpRrPacket(ssrc=self.ssrc, reports=[]))

    def send_pli(self) -> None:
        if self.media_ssrc:
            self._send(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=self.ssrc, media_ssrc=self.media_ssrc))

    def send_nack(self, lost: list[int]) -> None:
        if lost and self.media_ssrc:
            self._send(
                RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=self.ssrc, media_ssrc=self.media_ssrc, lost=lost)
            )

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
