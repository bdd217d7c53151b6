"""One track's RTP → one file (PyAV muxer, no decoding, no encoding).

``push`` is synchronous: reorder buffer → depacketizer → ``av.Packet`` muxed at once. Timestamps
come from the RTP timestamps (unwrapped past 2^32), relative to the first muxed frame, in the
codec's clock (Opus: 1/48000). Video is muxed from its first keyframe on (the stream is created
then, with the keyframe's size); ``needs_keyframe`` says when the caller should send a PLI.
Malformed packets are counted (``malformed``), never raised. ``close`` finishes the file (and removes
it when nothing was muxed).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.rtp import RtpPacket

from parley.egress_worker.media.codecs import TrackCodec, container_for
from parley.egress_worker.media.depacketize import Frame, depacketizer_for, h264_parameter_sets
from parley.egress_worker.media.errors import MuxError
from parley.egress_worker.media.reorder import ReorderBuffer

OPUS_FRAME_MS = (10, 20, 40, 60, 10, 20, 40, 60, 10, 20, 40, 60, 10, 20, 10, 20)
"""Frame length by TOC config 0-15 (SILK, hybrid); 16-31 (CELT) are 2.5/5/10/20 ms."""


def opus_samples(packet: bytes) -> int:
    """48 kHz samples in one Opus packet (RFC 6716 §3.1), 960 when it cannot be told."""
    if not packet:
        return 960
    toc = packet[0]
    config, code = toc >> 3, toc & 0x03
    frame = OPUS_FRAME_MS[config] * 48 if config < 16 else (120, 240, 480, 960)[config & 0x03]
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        count = packet[1] & 0x3F if len(packet) > 1 else 1
    return frame * max(count, 1)


LIVE_OPTIONS: dict[str, dict[str, str]] = {
    "ogg": {"flush_packets": "1", "page_duration": "500000"},
    "webm": {"flush_packets": "1", "cluster_time_limit": "1000"},
    "mp4": {
        "flush_packets": "1",
        "movflags": "frag_keyframe+empty_moov+default_base_moof",
        "frag_duration": "1000000",
    },
}
"""Muxer options that keep the file on disk current (pages / clusters / fragments of at most about
a second, flushed as written): a worker killed mid-recording leaves a playable file."""


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    path: str
    size_bytes: int
    duration_s: float
    frames: int


class TrackRecorder:
    def __init__(self, path: str, codec: TrackCodec, *, reorder_delay: float = 0.2) -> None:
        self.path = path
        self.codec = codec
        fmt, _ = container_for(codec.mime_type)
        self._audio = codec.kind == "audio"
        self._clock = 48000 if self._audio else codec.clock_rate
        self._time_base = Fraction(1, self._clock)
        self._reorder = ReorderBuffer(max_delay=reorder_delay)
        self._depacketizer = depacketizer_for(codec.mime_type)
        options = dict(LIVE_OPTIONS[fmt])
        try:
            self._container: Any = av.open(path, "w", format=fmt, options=options)
        except Exception as exc:
            raise MuxError(f"cannot open {path}: {exc}") from exc
        self._stream: Any = None
        self._pt: int | None = None
        self._first_ext: int | None = None
        self._last_ts: int | None = None
        self._ext_base = 0
        self._last_pts = -1
        self._last_duration = 0
        self.frames = 0
        self.malformed = 0
        self.first_media_at: float | None = None
        self.last_media_at: float | None = None
        self._closed: RecordingSummary | None = None

    # -- state ------------------------------------------------------------------------------------
    @property
    def needs_keyframe(self) -> bool:
        return not self._audio and self._depacketizer.needs_keyframe

    def missing(self) -> list[int]:
        return self._reorder.missing()

    @property
    def duration_s(self) -> float:
        if self._first_ext is None or self.frames == 0:
            return 0.0
        duration = self._last_duration
        if not self._audio and self.frames > 1:
            duration = self._last_pts // (self.frames - 1)  # one average frame interval
        return (self._last_pts + duration) / self._clock

    # -- the packet path --------------------------------------------------------------------------
    def push(self, packet: RtpPacket, now: float) -> None:
        if self._closed is not None:
            return
        if self._pt is None:
            self._pt = packet.payload_type
        elif packet.payload_type != self._pt:
            return
        for ready in self._reorder.push(packet, now):
            try:
                frame = self._depacketizer.push(ready)
            except (ValueError, IndexError):
                self.malformed += 1
                continue
            if frame is not None:
                self._mux(frame, now)

    def _extend(self, ts: int) -> int:
        if self._last_ts is not None and ts < self._last_ts and self._last_ts - ts > 0x80000000:
            self._ext_base += 1 << 32  # wrapped
        elif self._last_ts is not None and ts > self._last_ts and ts - self._last_ts > 0x80000000:
            return self._ext_base - (1 << 32) + ts  # a late one from before the wrap
        self._last_ts = ts
        return self._ext_base + ts

    def _mux(self, frame: Frame, now: float) -> None:
        ext = self._extend(frame.timestamp)
        if self._first_ext is None:
            if not self._open_stream(frame):
                return
            self._first_ext = ext
        pts = (ext - self._first_ext) * self._clock // self.codec.clock_rate
        if pts <= self._last_pts:
            self.malformed += 1  # timestamps must grow
            return
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = pts
        packet.time_base = self._time_base
        if self._audio:
            self._last_duration = opus_samples(frame.data)
            packet.duration = self._last_duration
        packet.is_keyframe = frame.keyframe
        packet.stream = self._stream
        try:
            self._container.mux(packet)
        except Exception as exc:
            self.malformed += 1
            if self.frames == 0:
                raise MuxError(f"cannot write {self.path}: {exc}") from exc
            return
        self._last_pts = pts
        self.frames += 1
        if self.first_media_at is None:
            self.first_media_at = now
        self.last_media_at = now

    def _open_stream(self, frame: Frame) -> bool:
        """The output stream, at the first frame (video: the first keyframe)."""
        if not self._audio and not frame.keyframe:
            return False
        mime = self.codec.mime_type.lower()
        if mime == "audio/opus":
            channels = self.codec.channels or 2
            stream = self._container.add_stream("opus", rate=48000)
            stream.codec_context.layout = "stereo" if channels == 2 else "mono"
            stream.codec_context.extradata = b"OpusHead" + struct.pack(
                "<BBHIhB", 1, channels, 312, 48000, 0, 0
            )
        elif mime == "video/vp8":
            stream = self._container.add_stream("vp8")
            stream.codec_context.width, stream.codec_context.height = frame.width, frame.height
        else:
            stream = self._container.add_stream("h264")
            extradata = h264_parameter_sets(frame.data)
            if extradata:
                stream.codec_context.extradata = extradata
            size = _h264_size(frame.data)
            if size:
                stream.codec_context.width, stream.codec_context.height = size
        stream.time_base = self._time_base
        self._stream = stream
        return True

    # -- end --------------------------------------------------------------------------------------
    def close(self) -> RecordingSummary:
        if self._closed is not None:
            return self._closed
        try:
            self._container.close()
        except Exception:
            if self.frames:
                raise
        path = Path(self.path)
        if self.frames == 0:
            path.unlink(missing_ok=True)
            size = 0
        else:
            size = path.stat().st_size
        self._closed = RecordingSummary(self.path, size, self.duration_s, self.frames)
        return self._closed


def _h264_size(frame: bytes) -> tuple[int, int] | None:
    """The picture size from the frame's SPS, decoded by FFmpeg's parser (no picture decoding)."""
    try:
        parser: Any = av.CodecContext.create("h264", "r")
        for packet in parser.parse(frame):
            parser.decode(packet)
        if parser.width and parser.height:
            return int(parser.width), int(parser.height)
    except Exception:
        return None
    return None
