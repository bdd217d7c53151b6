"""Transport-wide congestion control feedback: RTCP RTPFB FMT=15 (draft-holmer-rmcat-transport-wide-cc-
extensions-01 §3.1), parsed into (transport-wide sequence number, arrival time or lost) and built (tests).

Layout after the 12-byte RTPFB header: base sequence number (16), packet status count (16), reference
time (24, signed, 64 ms units), feedback packet count (8), then packet status chunks (16 bits each) and
receive deltas. A chunk is either a run (``0|SS|run length:13``) of one status symbol or a status vector
(``1|0|14 one-bit symbols`` or ``1|1|7 two-bit symbols``). Symbols: 0 not received, 1 received with a
one-byte unsigned delta, 2 received with a two-byte signed delta, 3 reserved (no information). Deltas
are in 250 µs ticks, the first relative to the reference time, each next one to the previous packet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

RTCP_RTPFB = 205
RTCP_PSFB = 206
FMT_TWCC = 15
DELTA_TICK_S = 0.00025
"""A receive delta unit: 250 µs."""
REFERENCE_TICK_S = 0.064
"""A reference time unit: 64 ms."""
REFERENCE_WRAP = 1 << 24

NOT_RECEIVED, SMALL_DELTA, LARGE_DELTA, RESERVED = 0, 1, 2, 3

_FIXED = struct.Struct("!BBHLLHHL")
_MAX_RUN = 0x1FFF


@dataclass(frozen=True, slots=True)
class Feedback:
    """One parsed feedback packet."""

    sender_ssrc: int
    media_ssrc: int
    base_seq: int
    reference_time: int
    """Unsigned 24-bit, in 64 ms units (see :func:`unwrap_reference`)."""
    fb_count: int
    packets: list[tuple[int, float | None]]
    """(16-bit transport-wide seq, arrival in seconds after reference time 0 on the receiver's clock, or
    None when reported lost), in sequence order. Packets with the reserved symbol are left out."""


def split_compound(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(packet type, count/fmt, packet bytes) of each packet of a compound RTCP packet; raises
    ``ValueError`` on a malformed one."""
    pos = 0
    while pos < len(data):
        if len(data) < pos + 4:
            raise ValueError("truncated RTCP header")
        first, packet_type, length = struct.unpack_from("!BBH", data, pos)
        if first >> 6 != 2:
            raise ValueError("RTCP version is not 2")
        end = pos + 4 + length * 4
        if end > len(data):
            raise ValueError("truncated RTCP packet")
        yield packet_type, first & 0x1F, data[pos:end]
        pos = end


def parse_feedback(packet: bytes) -> Feedback:
    """Parse one TWCC feedback packet (RTCP header included); raises ``ValueError`` if malformed."""
    if len(packet) < _FIXED.size:
        raise ValueError("TWCC feedback too short")
    first, packet_type, length, sender, media, base, count, ref_fb = _FIXED.unpack_from(packet)
    if first >> 6 != 2 or packet_type != RTCP_RTPFB or first & 0x1F != FMT_TWCC:
        raise ValueError("not a TWCC feedback packet")
    end = 4 + length * 4
    if end > len(packet) or end < _FIXED.size:
        raise ValueError("TWCC feedback length is invalid")
    if first & 0x20:  # padding: the last byte counts the padding bytes
        padding = packet[end - 1]
        if padding == 0 or end - padding < _FIXED.size:
            raise ValueError("TWCC feedback padding is invalid")
        end -= padding
    symbols: list[int] = []
    pos = _FIXED.size
    while len(symbols) < count:
        if pos + 2 > end:
            raise ValueError("TWCC feedback has too few status chunks")
        chunk = (packet[pos] << 8) | packet[pos + 1]
        pos += 2
        if not chunk & 0x8000:
            symbols += [(chunk >> 13) & 3] * min(chunk & _MAX_RUN, count - len(symbols))
        elif not chunk & 0x4000:
            symbols += [(chunk >> shift) & 1 for shift in range(13, -1, -1)]
        else:
            symbols += [(chunk >> shift) & 3 for shift in range(12, -1, -2)]
    del symbols[count:]
    reference = ref_fb >> 8
    base_s = reference * REFERENCE_TICK_S
    ticks = 0
    packets: list[tuple[int, float | None]] = []
    for i, symbol in enumerate(symbols):
        seq = (base + i) & 0xFFFF
        if symbol == NOT_RECEIVED:
            packets.append((seq, None))
            continue
        if symbol == SMALL_DELTA:
            if pos + 1 > end:
                raise ValueError("TWCC feedback has too few receive deltas")
            ticks += packet[pos]
            pos += 1
        elif symbol == LARGE_DELTA:
            if pos + 2 > end:
                raise ValueError("TWCC feedback has too few receive deltas")
            ticks += struct.unpack_from("!h", packet, pos)[0]
            pos += 2
        else:
            continue
        packets.append((seq, base_s + ticks * DELTA_TICK_S))
    return Feedback(sender, media, base, reference, ref_fb & 0xFF, packets)


def unwrap_reference(previous: int | None, reference: int) -> int:
    """Extend a 24-bit reference time given the previous extended one (None: the first)."""
    if previous is None:
        return reference
    delta = (reference - previous) % REFERENCE_WRAP
    if delta >= REFERENCE_WRAP // 2:
        delta -= REFERENCE_WRAP
    return previous + delta


def build_feedback(
    *,
    base_seq: int,
    arrivals: Sequence[float | None],
    sender_ssrc: int = 1,
    media_ssrc: int = 0,
    fb_count: int = 0,
    reference_time: int | None = None,
) -> bytes:
    """A TWCC feedback packet for ``arrivals[i]`` = arrival (seconds, receiver clock) of seq
    ``base_seq + i``, or None if lost. The reference time defaults to the first arrival rounded down
    to 64 ms (it is sent modulo 2^24). Raises ``ValueError`` if a delta does not fit in 16 signed bits of 250 µs."""
    received = [a for a in arrivals if a is not None]
    if reference_time is None:
        reference_time = int(received[0] // REFERENCE_TICK_S) if received else 0
    symbols: list[int] = []
    deltas = b""
    previous = round(reference_time * REFERENCE_TICK_S / DELTA_TICK_S)
    for arrival in arrivals:
        if arrival is None:
            symbols.append(NOT_RECEIVED)
            continue
        ticks = round(arrival / DELTA_TICK_S)
        delta, previous = ticks - previous, ticks
        if 0 <= delta <= 0xFF:
            symbols.append(SMALL_DELTA)
            deltas += bytes([delta])
        elif -0x8000 <= delta <= 0x7FFF:
            symbols.append(LARGE_DELTA)
            deltas += struct.pack("!h", delta)
        else:
            raise ValueError("receive delta out of range: send a new feedback packet")
    body = struct.pack(
        "!LLHHL",
        sender_ssrc,
        media_ssrc,
        base_seq & 0xFFFF,
        len(symbols),
        ((reference_time % REFERENCE_WRAP) << 8) | (fb_count & 0xFF),
    )
    body += b"".join(struct.pack("!H", c) for c in _chunks(symbols)) + deltas
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!BBH", 0x80 | FMT_TWCC, RTCP_RTPFB, len(body) // 4) + body


def _chunks(symbols: list[int]) -> Iterator[int]:
    """Runs for repeated symbols, else the densest status vector that holds the next symbols."""
    i = 0
    while i < len(symbols):
        run = 1
        while i + run < len(symbols) and run < _MAX_RUN and symbols[i + run] == symbols[i]:
            run += 1
        if run >= 7 or i + run == len(symbols):
            yield (symbols[i] << 13) | run
            i += run
            continue
        one_bit = symbols[i : i + 14]
        if len(one_bit) == 14 and max(one_bit) <= SMALL_DELTA:
            yield 0x8000 | sum(s << (13 - k) for k, s in enumerate(one_bit))
            i += 14
            continue
        two_bit = symbols[i : i + 7]
        yield 0xC000 | sum(s << (12 - 2 * k) for k, s in enumerate(two_bit))
        i += len(two_bit)
