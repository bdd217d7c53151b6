"""Pure parts of the media engine: munger, cache, keyframes, audio level, sender reports, writer."""

from __future__ import annotations

import itertools
import random

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpPacket, RtcpSrPacket, RtpPacket

from parley.sfu.media.aiortc_internals import URI_ABS_SEND_TIME, URI_AUDIO_LEVEL, URI_MID, URI_RID
from parley.sfu.media.audio_level import AudioLevel
from parley.sfu.media.keyframe import (
    av1_is_keyframe,
    h264_is_keyframe,
    keyframe_detector,
    vp8_is_keyframe,
    vp8_keyframe_size,
    vp9_is_keyframe,
)
from parley.sfu.media.layers import best_layer, layer_rank
from parley.sfu.media.packet_cache import PacketCache
from parley.sfu.media.rtp_munger import RtpMunger
from parley.sfu.media.rtp_writer import RtpWriter
from parley.sfu.media.sender_report import PublisherSr, build_sender_report, ntp_add, report_times
from parley.sfu.media.vp8_munger import Vp8Munger

pytestmark = pytest.mark.unit


def test_munger_keeps_output_contiguous_across_source_switches() -> None:
    m = RtpMunger(90000, rng=random.Random(1))
    out = [m.map(s, 1000 + 3000 * i, 0.0 + i / 30) for i, s in enumerate(range(65530, 65540))]
    assert all(o is not None for o in out)
    m.switch()
    later = m.map(7, 555, 1.0)  # a different source: its own seq/ts space
    assert later is not None
    seqs = [o[0] for o in out if o] + [later[0]]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    last_ts = out[-1][1] if out[-1] else 0
    assert 0 < (later[1] - last_ts) & 0xFFFFFFFF <= 90000 * 1  # elapsed wall time, ~0.7 s


def test_munger_maps_reordered_packets_and_drops_ones_from_an_earlier_segment() -> None:
    m = RtpMunger(48000, rng=random.Random(2))
    a = m.map(100, 0, 0.0)
    m.map(102, 1920, 0.04)
    late = m.map(101, 960, 0.05)
    assert a is not None and late is not None and (late[0] - a[0]) & 0xFFFF == 1
    m.switch()
    m.map(500, 0, 0.1)
    assert m.map(99, 0, 0.11) is None  # before the new segment started


def test_munger_closes_the_gap_of_a_dropped_padding_packet() -> None:
    m = RtpMunger(90000, rng=random.Random(3))
    a = m.map(10, 0, 0.0)
    m.drop(11)
    b = m.map(12, 0, 0.01)
    assert a is not None and b is not None and (b[0] - a[0]) & 0xFFFF == 1


def test_packet_cache_returns_only_the_exact_sequence_number() -> None:
    cache = PacketCache(4)
    for seq in range(10):
        cache.put(RtpPacket(sequence_number=seq))
    assert cache.get(9) is not None and cache.get(9).sequence_number == 9  # type: ignore[union-attr]
    assert cache.get(5) is None  # overwritten by 9
    assert cache.get(1) is None
    with pytest.raises(ValueError):
        PacketCache(0)


def test_vp8_keyframe_detection_and_size() -> None:
    key = bytes([0x90, 0x80, 0x81, 0x02, 0x00, 0x00, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01])
    assert vp8_is_keyframe(key)
    assert vp8_keyframe_size(key) == (640, 480)
    assert not vp8_is_keyframe(bytes([0x90, 0x80, 0x05, 0x01]))  # P bit: inter frame
    assert not vp8_is_keyframe(bytes([0x80, 0x80, 0x05, 0x00]))  # S=0: not the start
    assert not vp8_is_keyframe(b"")
    assert keyframe_detector("video/VP8") is vp8_is_keyframe
    assert keyframe_detector("audio/opus")(b"\x00")


def test_h264_vp9_av1_keyframes() -> None:
    assert h264_is_keyframe(bytes([0x65, 0x88]))  # IDR
    assert h264_is_keyframe(bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]))  # STAP-A SPS
    assert h264_is_keyframe(bytes([0x7C, 0x85, 0x00]))  # FU-A start of IDR
    assert not h264_is_keyframe(bytes([0x7C, 0x05, 0x00]))  # FU-A continuation
    assert not h264_is_keyframe(bytes([0x41, 0x9A]))  # non-IDR slice
    assert vp9_is_keyframe(bytes([0x08])) and not vp9_is_keyframe(bytes([0x48]))
    assert av1_is_keyframe(bytes([0x18])) and not av1_is_keyframe(bytes([0x10]))


def test_audio_level_is_recent_and_linear() -> None:
    level = AudioLevel(window_s=0.4)
    t = 100.0
    for i in range(40):
        level.add(0, t + i * 0.02)  # 0 dBov: loudest
    assert level.level(t + 0.79) == pytest.approx(1.0)
    for i in range(40):
        level.add(127, t + 0.8 + i * 0.02)  # silence
    assert level.level(t + 1.59) == 0.0
    assert level.level(t + 10) == 0.0


def test_sender_report_follows_the_publisher_timeline() -> None:
    sr = PublisherSr(ntp=(3_900_000_000 << 32), rtp=1_000, arrival=50.0)
    ntp, rtp = report_times(
        now=52.0, clock_rate=90000, publisher_sr=sr, ts_offset=5, last_out_ts=0, last_out_time=None
    )
    assert ntp == ntp_add(sr.ntp, 2.0)
    assert rtp == 1_000 + 5 + 180_000
    ntp2, rtp2 = report_times(
        now=10.5,
        clock_rate=48000,
        publisher_sr=None,
        ts_offset=0,
        last_out_ts=4_294_967_000,
        last_out_time=10.0,
        wall_now=0.0,
    )
    assert rtp2 == (4_294_967_000 + 24_000) & 0xFFFFFFFF
    assert ntp2 == 2208988800 << 32
    data = build_sender_report(ssrc=42, ntp=ntp, rtp=rtp, packets=7, octets=700)
    [packet] = RtcpPacket.parse(data)
    assert isinstance(packet, RtcpSrPacket)
    assert (packet.ssrc, packet.sender_info.rtp_timestamp, packet.sender_info.packet_count) == (42, rtp, 7)


def test_rtp_writer_output_parses_with_the_subscribers_extension_ids() -> None:
    exts = [
        RTCRtpHeaderExtensionParameters(id=9, uri=URI_MID),
        RTCRtpHeaderExtensionParameters(id=1, uri=URI_AUDIO_LEVEL),
        RTCRtpHeaderExtensionParameters(id=3, uri=URI_ABS_SEND_TIME),
        RTCRtpHeaderExtensionParameters(id=10, uri=URI_RID),
    ]
    params = RTCRtpSendParameters(headerExtensions=exts, muxId="7")
    writer = RtpWriter({e.uri: e.id for e in exts}, "7")
    source = RtpPacket(payload_type=111, marker=1, sequence_number=5, timestamp=9, ssrc=1, payload=b"opus")
    source.extensions.audio_level = (True, 30)
    source.extensions.rtp_stream_id = "f"
    data = writer.write(source, payload_type=96, seq=1000, ts=77, ssrc=0xDEADBEEF, wall_now=1.5)
    ext_map = HeaderExtensionsMap()
    ext_map.configure(params)
    parsed = RtpPacket.parse(data, ext_map)
    assert (parsed.payload_type, parsed.marker, parsed.sequence_number, parsed.timestamp, parsed.ssrc) == (
        96,
        1,
        1000,
        77,
        0xDEADBEEF,
    )
    assert parsed.payload == b"opus"
    assert parsed.extensions.mid == "7"
    assert parsed.extensions.audio_level == (True, 30)
    assert parsed.extensions.rtp_stream_id is None  # rid never reaches subscribers
    assert parsed.extensions.abs_send_time == int((1.5 + 2208988800) * 262144) & 0xFFFFFF
    assert source.sequence_number == 5  # the shared packet is not mutated
    two_byte = RtpWriter({URI_MID: 20}, "7").write(source, payload_type=96, seq=1, ts=1, ssrc=1)
    ext_map2 = HeaderExtensionsMap()
    ext_map2.configure(
        RTCRtpSendParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=20, uri=URI_MID)])
    )
    assert RtpPacket.parse(two_byte, ext_map2).extensions.mid == "7"


def test_layer_ranking() -> None:
    assert [layer_rank(r) for r in ("q", "h", "f")] == [0, 1, 2]
    assert layer_rank("0") < layer_rank("2")
    assert best_layer([], 0.0) is None


def _vp8(picture_id: int, *, wide: bool = True, tl0: int | None = None, start: bool = True) -> bytes:
    ext = 0x80 | (0x40 if tl0 is not None else 0)
    pid = bytes([0x80 | (picture_id >> 8), picture_id & 0xFF]) if wide else bytes([picture_id & 0x7F])
    return (
        bytes([0x80 | (0x10 if start else 0), ext])
        + pid
        + (bytes([tl0]) if tl0 is not None else b"")
        + b"\x01xyz"
    )


def _fields(payload: bytes, head: bytes) -> tuple[int, int | None]:
    data = head + payload[len(head) :]
    if data[2] & 0x80:
        pid, pos = ((data[2] & 0x7F) << 8) | data[3], 4
    else:
        pid, pos = data[2], 3
    return pid, data[pos] if data[1] & 0x40 else None


def test_vp8_munger_continues_picture_ids_within_the_field_width() -> None:
    m = Vp8Munger()
    # first segment: 15-bit ids, several packets per picture, one reordered packet
    out = []
    for pid, newest in ((500, True), (500, True), (501, True), (502, True), (501, False), (502, True)):
        payload = _vp8(pid, tl0=pid & 0xFF)
        out.append(_fields(payload, m.rewrite(payload, newest)))
    assert out == [(500, 244), (500, 244), (501, 245), (502, 246), (501, 245), (502, 246)]
    m.switch()
    payload = _vp8(9000, tl0=3)
    assert _fields(payload, m.rewrite(payload, True)) == (503, 247)
    payload = _vp8(9001, tl0=4, start=False)
    assert _fields(payload, m.rewrite(payload, True)) == (504, 248)
    # a source with 7-bit ids keeps its width; numbering continues modulo 128
    m.switch()
    for i, pid in enumerate((126, 127, 0, 1)):
        payload = _vp8(pid, wide=False)
        head = m.rewrite(payload, True)
        assert len(head) == 3 and _fields(payload, head)[0] == (505 + i) & 0x7F
    assert m.last_picture_id is not None and m.last_picture_id & 0x7F == (505 + 3) & 0x7F
    m.switch()
    payload = _vp8(42)
    assert _fields(payload, m.rewrite(payload, True))[0] == (m.last_picture_id or 0)
    assert m.last_picture_id is not None and m.last_picture_id & 0x7F == (505 + 4) & 0x7F


def test_vp8_munger_leaves_payloads_without_ids_alone() -> None:
    m = Vp8Munger()
    assert m.rewrite(bytes([0x10, 0x00, 0x01]), True) == b""  # no X
    assert m.rewrite(bytes([0x90, 0x20, 0x40, 0x00]), True) == b""  # X with T only: no I/L/K
    assert m.rewrite(bytes([0x90, 0x80]), True) == b""  # truncated
    assert m.rewrite(bytes([0x90, 0x80, 0x85]), True) == b""  # M set but the second byte is missing
    assert m.last_picture_id is None and m.last_tl0picidx is None
