"""RTP payloads → codec frames, without decoding (synchronous, per packet).

* Opus (RFC 7587): one packet is one frame.
* VP8 (RFC 7741): the payload descriptor (X/I/L/T/K, 7- or 15-bit PictureID) is stripped; a frame
  is the packets of one timestamp, from the one with S=1 and partition 0 to the one with the marker
  bit. A keyframe has P=0 in its first byte; its header gives the width and height.
* H.264 (RFC 6184): single NAL units, STAP-A and FU-A become Annex B (start codes); a frame ends
  with the marker bit; an IDR slice makes it a keyframe.

A sequence gap inside a frame drops that frame; video then waits for the next keyframe (the caller
asks for one while ``needs_keyframe``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiortc.rtp import RtpPacket

START = b"\x00\x00\x00\x01"


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes
    timestamp: int
    """RTP timestamp (32 bit)."""
    keyframe: bool
    width: int = 0
    height: int = 0


class Depacketizer(Protocol):
    needs_keyframe: bool

    def push(self, packet: RtpPacket) -> Frame | None: ...


class OpusDepacketizer:
    needs_keyframe = False

    def push(self, packet: RtpPacket) -> Frame | None:
        if not packet.payload:
            return None
        return Frame(bytes(packet.payload), packet.timestamp, True)


def vp8_payload(payload: bytes) -> tuple[bool, bytes]:
    """(start of partition 0, the VP8 bytes) of one RTP payload; raises ValueError if truncated."""
    if not payload:
        raise ValueError("empty VP8 payload")
    first = payload[0]
    extended, start, partition = bool(first & 0x80), bool(first & 0x10), first & 0x07
    i = 1
    if extended:
        if len(payload) < 3:
            raise ValueError("truncated VP8 payload descriptor")
        flags = payload[i]
        i += 1
        if flags & 0x80:  # I: PictureID, 7 or 15 bits
            i += 2 if payload[i] & 0x80 else 1
        if flags & 0x40:  # L: TL0PICIDX
            i += 1
        if flags & 0x30:  # T or K: TID/Y/KEYIDX
            i += 1
    if i >= len(payload):
        raise ValueError("VP8 payload descriptor without data")
    return start and partition == 0, payload[i:]


def vp8_keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) of a VP8 keyframe, None for an interframe."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(frame[6:8], "little") & 0x3FFF, int.from_bytes(frame[8:10], "little") & 0x3FFF


class _FrameAssembler:
    """Shared frame assembly: parts of one timestamp, in sequence, ending with the marker."""

    def __init__(self) -> None:
        self.needs_keyframe = True
        self._parts: list[bytes] = []
        self._timestamp: int | None = None
        self._next_seq: int | None = None
        self.dropped_frames = 0

    def _reset(self) -> None:
        self._parts = []
        self._timestamp = None

    def _add(self, packet: RtpPacket, starts: bool, data: bytes) -> bool:
        """Add one packet's bytes; True when the frame is complete (marker)."""
        seq = packet.sequence_number
        in_order = self._next_seq is None or seq == self._next_seq
        self._next_seq = (seq + 1) & 0xFFFF
        if starts:
            if self._parts:
                self.dropped_frames += 1  # the previous frame never ended
            self._parts, self._timestamp = [data], packet.timestamp
        elif self._parts and in_order and packet.timestamp == self._timestamp:
            self._parts.append(data)
        else:  # a packet of a frame whose start (or a middle part) was lost
            if self._parts:
                self.dropped_frames += 1
            self.needs_keyframe = True
            self._reset()
            return False
        return bool(packet.marker)


class Vp8Depacketizer(_FrameAssembler):
    def push(self, packet: RtpPacket) -> Frame | None:
        starts, data = vp8_payload(bytes(packet.payload))
        if not self._add(packet, starts, data):
            return None
        frame = b"".join(self._parts)
        timestamp = packet.timestamp
        self._reset()
        size = vp8_keyframe_size(frame)
        if size is None and self.needs_keyframe:
            return None
        self.needs_keyframe = False
        width, height = size or (0, 0)
        return Frame(frame, timestamp, size is not None, width, height)


class H264Depacketizer(_FrameAssembler):
    def push(self, packet: RtpPacket) -> Frame | None:
        payload = bytes(packet.payload)
        if not payload:
            return None
        nal_type = payload[0] & 0x1F
        fu_start = True
        if nal_type == 28:  # FU-A
            if len(payload) < 3:
                raise ValueError("short FU-A")
            header = payload[1]
            fu_start = bool(header & 0x80)
            nal = bytes([(payload[0] & 0xE0) | (header & 0x1F)])
            data = START + nal + payload[2:] if fu_start else payload[2:]
        elif nal_type == 24:  # STAP-A
            units, i = [], 1
            while i + 2 <= len(payload):
                size = int.from_bytes(payload[i : i + 2], "big")
                units.append(START + payload[i + 2 : i + 2 + size])
                i += 2 + size
            data = b"".join(units)
        elif 1 <= nal_type <= 23:
            data = START + payload
        else:
            raise ValueError(f"H.264 NAL type {nal_type} is not supported")
        # a new timestamp starts a frame (unless it begins inside a fragmented NAL: broken)
        starts = self._timestamp != packet.timestamp and fu_start
        if not self._add(packet, starts, data):
            return None
        frame = b"".join(self._parts)
        timestamp = packet.timestamp
        self._reset()
        keyframe = any(nal[0] & 0x1F == 5 for nal in _nals(frame))
        if not keyframe and self.needs_keyframe:
            return None
        self.needs_keyframe = False
        return Frame(frame, timestamp, keyframe)


def _nals(annexb: bytes) -> list[bytes]:
    return [n for n in annexb.split(START) if n]


def h264_parameter_sets(annexb: bytes) -> bytes:
    """The SPS and PPS NAL units of an Annex B frame, as Annex B (the MP4 stream's extradata)."""
    return b"".join(START + n for n in _nals(annexb) if n[0] & 0x1F in (7, 8))


def depacketizer_for(mime_type: str) -> Depacketizer:
    mime = mime_type.lower()
    if mime == "audio/opus":
        return OpusDepacketizer()
    if mime == "video/vp8":
        return Vp8Depacketizer()
    return H264Depacketizer()
