"""Keyframe detection from RTP payloads (VP8, H264, VP9, AV1), without depacketizing frames."""

from __future__ import annotations

from collections.abc import Callable


def vp8_descriptor_length(payload: bytes) -> int:
    """Length of the VP8 payload descriptor (RFC 7741 §4.2); 0 if the payload is too short."""
    n = len(payload)
    if n < 1:
        return 0
    pos = 1
    if payload[0] & 0x80:  # X
        if n < 2:
            return 0
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if n <= pos:
                return 0
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    return pos if pos < n else 0


def vp8_is_keyframe(payload: bytes) -> bool:
    """First packet of a VP8 key frame: S=1, partition 0, and the frame tag's P bit clear."""
    if not payload or not payload[0] & 0x10 or payload[0] & 0x07:
        return False
    pos = vp8_descriptor_length(payload)
    return pos > 0 and payload[pos] & 0x01 == 0


def vp8_keyframe_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) from the first packet of a VP8 key frame."""
    if not vp8_is_keyframe(payload):
        return None
    pos = vp8_descriptor_length(payload)
    frame = payload[pos : pos + 10]
    if len(frame) < 10 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return width, height


def h264_is_keyframe(payload: bytes) -> bool:
    """A packet carrying an IDR slice or SPS (single NAL, STAP-A, or the start of an FU-A)."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (5, 7):
        return True
    if nal_type == 24:  # STAP-A: 16-bit size + NAL unit, repeated
        pos = 1
        while pos + 2 < len(payload):
            size = int.from_bytes(payload[pos : pos + 2], "big")
            if payload[pos + 2] & 0x1F in (5, 7):
                return True
            pos += 2 + size
        return False
    if nal_type == 28 and len(payload) > 1:  # FU-A start fragment of an IDR
        return bool(payload[1] & 0x80) and payload[1] & 0x1F == 5
    return False


def vp9_is_keyframe(payload: bytes) -> bool:
    """Begin of a frame that is not inter-picture predicted (draft-ietf-payload-vp9 §4.2)."""
    return len(payload) > 0 and payload[0] & 0x40 == 0 and payload[0] & 0x08 != 0


def av1_is_keyframe(payload: bytes) -> bool:
    """The N bit of the AV1 aggregation header: first packet of a coded video sequence."""
    return len(payload) > 0 and payload[0] & 0x08 != 0


def _always(payload: bytes) -> bool:
    return True


def keyframe_detector(mime_type: str) -> Callable[[bytes], bool]:
    """The detector for a codec; audio (and unknown codecs) count every packet as a switch point."""
    return {
        "video/vp8": vp8_is_keyframe,
        "video/h264": h264_is_keyframe,
        "video/vp9": vp9_is_keyframe,
        "video/av1": av1_is_keyframe,
    }.get(mime_type.lower(), _always)
