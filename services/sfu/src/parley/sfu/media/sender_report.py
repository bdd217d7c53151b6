"""RTCP sender reports for forwarded streams.

A subscriber needs the NTP/RTP pairs of audio and video of one publisher on a common timeline for lip
sync. When the publisher's own SR for the stream is known, the report carries the publisher's NTP
time advanced by the local time elapsed since that SR arrived, and the matching RTP time mapped
through the subscriber's timestamp offset. Otherwise it extrapolates from the last packet sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket

NTP_UNIX_OFFSET = 2208988800
TS_MASK = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class PublisherSr:
    """The latest SR of a published stream and when (local monotonic clock) it arrived."""

    ntp: int
    rtp: int
    arrival: float


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp for a Unix time."""
    return int((seconds + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def ntp_add(ntp: int, seconds: float) -> int:
    return (ntp + int(seconds * (1 << 32))) & 0xFFFFFFFFFFFFFFFF


def report_times(
    *,
    now: float,
    clock_rate: int,
    publisher_sr: PublisherSr | None,
    ts_offset: int,
    last_out_ts: int,
    last_out_time: float | None,
    wall_now: float | None = None,
) -> tuple[int, int]:
    """(NTP, RTP) for a sender report sent at ``now`` (monotonic) on the subscriber's stream."""
    if publisher_sr is not None:
        elapsed = now - publisher_sr.arrival
        ntp = ntp_add(publisher_sr.ntp, elapsed)
        rtp = (publisher_sr.rtp + ts_offset + int(elapsed * clock_rate)) & TS_MASK
        return ntp, rtp
    ntp = ntp_from_unix(time.time() if wall_now is None else wall_now)
    elapsed = 0.0 if last_out_time is None else now - last_out_time
    return ntp, (last_out_ts + int(elapsed * clock_rate)) & TS_MASK


def build_sender_report(*, ssrc: int, ntp: int, rtp: int, packets: int, octets: int) -> bytes:
    return bytes(
        RtcpSrPacket(
            ssrc=ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp,
                rtp_timestamp=rtp,
                packet_count=packets & 0xFFFFFFFF,
                octet_count=octets & 0xFFFFFFFF,
            ),
        )
    )
