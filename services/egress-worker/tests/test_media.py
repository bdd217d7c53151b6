"""The media path: reorder buffer, depacketizers (crafted packets) and the recorder (streams from
FFmpeg's own encoders, packetized here, recorded, then read back by FFmpeg through PyAV)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc.rtp import RtpPacket

from parley.egress_worker.media import TrackCodec, TrackRecorder, UnsupportedCodec, container_for
from parley.egress_worker.media.depacketize import (
    H264Depacketizer,
    Vp8Depacketizer,
    vp8_keyframe_size,
    vp8_payload,
)
from parley.egress_worker.media.recorder import opus_samples
from parley.egress_worker.media.reorder import ReorderBuffer

pytestmark = pytest.mark.unit


def rtp(seq: int, ts: int = 0, payload: bytes = b"x", marker: bool = False, pt: int = 96) -> RtpPacket:
    packet = RtpPacket(
        payload_type=pt, sequence_number=seq & 0xFFFF, timestamp=ts & 0xFFFFFFFF, marker=marker
    )
    packet.payload = payload
    return packet


# -- reorder -------------------------------------------------------------------------------------
def seqs(packets: list[RtpPacket]) -> list[int]:
    return [p.sequence_number for p in packets]


def test_reorder_releases_in_order_and_swaps_back() -> None:
    buf = ReorderBuffer()
    assert seqs(buf.push(rtp(10), 0.0)) == [10]
    assert seqs(buf.push(rtp(12), 0.0)) == []
    assert buf.missing() == [11] and buf.missing() == []  # reported once
    assert seqs(buf.push(rtp(11), 0.01)) == [11, 12]


def test_reorder_skips_a_gap_after_its_delay_and_drops_old_and_duplicate_packets() -> None:
    buf = ReorderBuffer(max_delay=0.2)
    buf.push(rtp(1), 0.0)
    assert seqs(buf.push(rtp(3), 0.0)) == []
    assert seqs(buf.push(rtp(4), 0.1)) == []
    assert seqs(buf.push(rtp(5), 0.25)) == [3, 4, 5] and buf.skipped == 1
    assert buf.push(rtp(2), 0.3) == [] and buf.push(rtp(5), 0.3) == []
    assert buf.dropped == 2


def test_reorder_wraps_around() -> None:
    buf = ReorderBuffer()
    buf.push(rtp(65534), 0.0)
    assert seqs(buf.push(rtp(0), 0.0)) == []
    assert seqs(buf.push(rtp(65535), 0.0)) == [65535, 0]


def test_reorder_skips_when_full() -> None:
    buf = ReorderBuffer(capacity=4, max_delay=10)
    buf.push(rtp(0), 0.0)
    out: list[RtpPacket] = []
    for seq in range(2, 6):
        out += buf.push(rtp(seq), 0.0)
    assert seqs(out) == [2, 3, 4, 5]


# -- codecs and depacketizers ---------------------------------------------------------------------
def test_containers_by_codec() -> None:
    assert container_for("audio/opus") == ("ogg", ".ogg")
    assert container_for("video/VP8") == ("webm", ".webm")
    assert container_for("video/H264") == ("mp4", ".mp4")
    with pytest.raises(UnsupportedCodec, match="video/av1 is not yet supported"):
        container_for("video/AV1")


@pytest.mark.parametrize(
    ("descriptor", "start"),
    [
        (b"\x10", True),  # S=1, PID 0, no extension
        (b"\x00", False),  # continuation
        (b"\x90\x80\x05", True),  # X, I: 7-bit PictureID
        (b"\x90\x80\x81\x05", True),  # X, I: 15-bit PictureID
        (b"\x90\xe0\x81\x05\x07\x40", True),  # X, I (15-bit), L, T
        (b"\x11", False),  # S=1 but partition 1
    ],
)
def test_vp8_descriptors_are_stripped(descriptor: bytes, start: bool) -> None:
    assert vp8_payload(descriptor + b"DATA") == (start, b"DATA")


def test_a_truncated_vp8_descriptor_is_an_error() -> None:
    with pytest.raises(ValueError):
        vp8_payload(b"\x90\x80")


KEY = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A]) + (320).to_bytes(2, "little") + (240).to_bytes(2, "little")


def test_vp8_keyframe_size() -> None:
    assert vp8_keyframe_size(KEY + b"rest") == (320, 240)
    assert vp8_keyframe_size(b"\x11" + KEY[1:]) is None  # P=1: an interframe


def test_vp8_frames_span_packets_and_a_gap_drops_the_frame() -> None:
    d = Vp8Depacketizer()
    assert d.needs_keyframe
    assert d.push(rtp(1, 100, b"\x00" + b"tail", marker=True)) is None  # middle of an unseen frame
    assert d.push(rtp(2, 200, b"\x10" + KEY[:4])) is None
    assert d.push(rtp(3, 200, b"\x00" + KEY[4:])) is None
    frame = d.push(rtp(4, 200, b"\x00" + b"end", marker=True))
    assert frame is not None and frame.keyframe and (frame.width, frame.height) == (320, 240)
    assert frame.data == KEY + b"end" and not d.needs_keyframe
    inter = b"\x01\x00\x00"
    assert d.push(rtp(5, 300, b"\x10" + inter)) is None
    assert d.push(rtp(7, 300, b"\x00" + b"x", marker=True)) is None  # 6 lost: the frame is dropped
    assert d.needs_keyframe and d.dropped_frames == 1
    assert d.push(rtp(8, 400, b"\x10" + inter, marker=True)) is None  # an interframe: still waiting


def test_h264_single_stap_a_and_fu_a_become_annex_b() -> None:
    d = H264Depacketizer()
    sps, pps, idr = b"\x67SPS", b"\x68PPS", b"\x65" + b"I" * 10
    stap = b"\x18" + len(sps).to_bytes(2, "big") + sps + len(pps).to_bytes(2, "big") + pps
    assert d.push(rtp(1, 900, stap)) is None
    fu_indicator = bytes([(idr[0] & 0xE0) | 28])
    assert d.push(rtp(2, 900, fu_indicator + bytes([0x80 | 5]) + idr[1:6])) is None
    frame = d.push(rtp(3, 900, fu_indicator + bytes([0x40 | 5]) + idr[6:], marker=True))
    start = b"\x00\x00\x00\x01"
    assert frame is not None and frame.keyframe
    assert frame.data == start + sps + start + pps + start + idr
    delta = d.push(rtp(4, 1800, b"\x41PSLICE", marker=True))
    assert delta is not None and not delta.keyframe and delta.data == start + b"\x41PSLICE"


@pytest.mark.parametrize(
    ("toc", "samples"),
    [(bytes([0xFC]), 960), (bytes([0x78]), 960), (bytes([0x79]), 1920), (bytes([0x1B, 0x03]), 8640)],
)
def test_opus_packet_durations(toc: bytes, samples: int) -> None:
    # 0xFC: CELT 20 ms; 0x78: hybrid config 15 (20 ms); 0x79: two of them; 0x1B: SILK 60 ms, code 3, 3 frames
    assert opus_samples(toc) == samples


# -- the recorder on real encoder output -----------------------------------------------------------
def encode_video(codec: str, frames: int, **options: Any) -> list[tuple[bytes, int, bool]]:
    """(frame bytes, 90 kHz timestamp, keyframe) from FFmpeg's encoder, 320x240 at 30 fps."""
    encoder: Any = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.gop_size = 30
    encoder.bit_rate = 300_000
    encoder.options = options
    encoder.open()
    out = []
    for i in range(frames):
        image = np.full((240, 320, 3), (i * 7) % 255, dtype=np.uint8)
        image[:, : 160 + i % 100] = 40
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [(bytes(p), int(p.pts) * 3000, bool(p.is_keyframe)) for p in encoder.encode(frame)]
    out += [(bytes(p), int(p.pts) * 3000, bool(p.is_keyframe)) for p in encoder.encode(None)]
    return out


def vp8_packets(frames: list[tuple[bytes, int, bool]], mtu: int = 1000) -> list[RtpPacket]:
    packets, seq = [], 100
    for data, ts, _ in frames:
        chunks = [data[i : i + mtu] for i in range(0, len(data), mtu)]
        for n, chunk in enumerate(chunks):
            packets.append(
                rtp(seq, ts, (b"\x10" if n == 0 else b"\x00") + chunk, marker=n == len(chunks) - 1)
            )
            seq += 1
    return packets


def h264_packets(frames: list[tuple[bytes, int, bool]], mtu: int = 1000) -> list[RtpPacket]:
    packets, seq = [], 100
    for data, ts, _ in frames:
        nals = [n for n in data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01") if n]
        for k, nal in enumerate(nals):
            last_nal = k == len(nals) - 1
            if len(nal) <= mtu:
                packets.append(rtp(seq, ts, nal, marker=last_nal))
                seq += 1
                continue
            body = nal[1:]
            parts = [body[i : i + mtu] for i in range(0, len(body), mtu)]
            for n, part in enumerate(parts):
                header = (0x80 if n == 0 else 0) | (0x40 if n == len(parts) - 1 else 0) | (nal[0] & 0x1F)
                marker = last_nal and n == len(parts) - 1
                packets.append(rtp(seq, ts, bytes([(nal[0] & 0xE0) | 28, header]) + part, marker=marker))
                seq += 1
    return packets


def read_back(path: Path) -> tuple[str, int, int, float, int]:
    """(codec, width, height, duration s, decoded frames) as FFmpeg sees the file."""
    with av.open(str(path), mode="r") as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        duration = (container.duration or 0) / 1e6
        return stream.codec_context.name, decoded[0].width, decoded[0].height, duration, len(decoded)


def test_vp8_from_the_middle_of_a_gop_starts_at_the_next_keyframe(tmp_path: Path) -> None:
    frames = encode_video("libvpx", 75)
    start = 10
    first_key = next(i for i, (_, _, key) in enumerate(frames) if key and i >= start)
    assert first_key > start  # the stream really starts mid-GOP
    recorder = TrackRecorder(str(tmp_path / "v.webm"), TrackCodec("video/VP8", 90000))
    for i, packet in enumerate(vp8_packets(frames[start:])):
        recorder.push(packet, i * 0.001)
        if recorder.frames == 0:
            assert recorder.needs_keyframe
    summary = recorder.close()
    expected = len(frames) - first_key
    assert summary.frames == expected and not recorder.needs_keyframe
    codec, width, height, duration, decoded = read_back(tmp_path / "v.webm")
    assert (codec, width, height, decoded) == ("vp8", 320, 240, expected)
    assert abs(duration - expected / 30) < 0.1 and abs(summary.duration_s - expected / 30) < 0.05


def test_h264_is_recorded_to_a_fragmented_mp4(tmp_path: Path) -> None:
    frames = encode_video("libx264", 60, preset="ultrafast", tune="zerolatency", bframes="0")
    recorder = TrackRecorder(str(tmp_path / "v.mp4"), TrackCodec("video/H264", 90000))
    for i, packet in enumerate(h264_packets(frames)):
        recorder.push(packet, i * 0.001)
    summary = recorder.close()
    assert summary.frames == 60 and summary.size_bytes > 0
    codec, width, height, duration, decoded = read_back(tmp_path / "v.mp4")
    assert (codec, width, height, decoded) == ("h264", 320, 240, 60)
    assert abs(duration - 2.0) < 0.1


def test_nothing_recorded_leaves_no_file(tmp_path: Path) -> None:
    recorder = TrackRecorder(str(tmp_path / "none.webm"), TrackCodec("video/VP8", 90000))
    recorder.push(rtp(1, 0, b"\x10\x01\x00\x00", marker=True), 0.0)  # an interframe only
    summary = recorder.close()
    assert (summary.frames, summary.size_bytes) == (0, 0) and not (tmp_path / "none.webm").exists()
    assert recorder.close() is summary


def test_malformed_and_foreign_packets_are_counted_not_raised(tmp_path: Path) -> None:
    recorder = TrackRecorder(str(tmp_path / "a.webm"), TrackCodec("video/VP8", 90000))
    recorder.push(rtp(1, 0, b"\x90\x80", marker=True), 0.0)  # truncated descriptor
    recorder.push(rtp(2, 0, b"\x10xx", pt=97), 0.0)  # another payload type: ignored
    assert recorder.malformed == 1 and recorder.frames == 0
    recorder.close()
