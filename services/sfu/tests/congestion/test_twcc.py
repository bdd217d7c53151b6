"""TWCC feedback parsing and building (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1)."""

from __future__ import annotations

import struct

import pytest

from parley.sfu.media.congestion.send_history import SendHistory
from parley.sfu.media.congestion.twcc import (
    REFERENCE_TICK_S,
    build_feedback,
    parse_feedback,
    unwrap_reference,
)

pytestmark = pytest.mark.unit

# A feedback packet sent by Chrome, as published in webrtc-rs's rtcp tests ("example6"): V=2, P=1
# (one padding byte), base seq 34108, 9 packets, reference time 6551830, fb count 179; chunks
# 0xd552 (two-bit vector: 5 x small delta, not received, large delta) and 0x0030 (run of 48 "not
# received", only 2 within the status count); deltas 155, 170, 106, 170, 123 ticks and 0x0109 (large).
CHROME = bytes.fromhex("afcd00079b74f61f9371dcbc853c000963f916b3d5520030 9baa6aaa7b010901".replace(" ", ""))


def _at(reference: int, ticks: int) -> float:
    return reference * REFERENCE_TICK_S + ticks * 0.00025


def test_parses_a_packet_captured_from_chrome() -> None:
    fb = parse_feedback(CHROME)
    assert (fb.sender_ssrc, fb.media_ssrc) == (2608133663, 2473712828)
    assert (fb.base_seq, fb.reference_time, fb.fb_count) == (34108, 6551830, 179)
    ticks = [155, 325, 431, 601, 724]
    expected: list[tuple[int, float | None]] = [(34108 + i, _at(6551830, t)) for i, t in enumerate(ticks)]
    expected += [(34113, None), (34114, _at(6551830, 724 + 265)), (34115, None), (34116, None)]
    assert [s for s, _ in fb.packets] == [s for s, _ in expected]
    for (_, got), (_, want) in zip(fb.packets, expected, strict=True):
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert got == pytest.approx(want, abs=1e-9)


def test_hand_computed_run_length_and_one_bit_vector() -> None:
    # base 65534 (wraps to 0, 1, ...), 16 packets, reference time 1 (64 ms):
    # chunk 1: one-bit vector 1 0 1 1 1 1 1 1 1 1 1 1 1 1 -> 0b1_0_10111111111111 = 0xAFFF
    # chunk 2: run of 2 x small delta -> 0b0_01_0000000000010 = 0x2002
    # deltas: 4 (1 ms), then 12 x 8 (2 ms each), then 2 x 0
    deltas = bytes([4] + [8] * 12 + [0, 0])
    body = struct.pack("!LLHHL", 7, 9, 65534, 16, (1 << 8) | 3) + struct.pack("!HH", 0xAFFF, 0x2002) + deltas
    body += b"\x00" * (-len(body) % 4)
    packet = struct.pack("!BBH", 0x8F, 205, len(body) // 4) + body
    fb = parse_feedback(packet)
    assert fb.fb_count == 3
    seqs = [s for s, _ in fb.packets]
    assert seqs == [65534, 65535, *range(14)]
    arrivals = [a for _, a in fb.packets]
    assert arrivals[1] is None
    assert arrivals[0] == pytest.approx(0.064 + 0.001)
    assert arrivals[2] == pytest.approx(0.065 + 0.002)
    assert arrivals[13] == pytest.approx(0.065 + 12 * 0.002)
    assert arrivals[14] == arrivals[15] == arrivals[13]


def test_two_bit_vector_with_large_and_negative_deltas_round_trips() -> None:
    arrivals: list[float | None] = [10.0, 10.1, None, 9.99, 10.0005, None, 10.2]
    packet = build_feedback(base_seq=100, arrivals=arrivals, fb_count=5)
    fb = parse_feedback(packet)
    assert [s for s, _ in fb.packets] == list(range(100, 107))
    for (_, got), want in zip(fb.packets, arrivals, strict=True):
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert got == pytest.approx(want, abs=0.000125)
    # 0xC000 marks a two-bit vector chunk: the first chunk here is one
    assert packet[20] >> 6 == 0b11


def test_long_runs_and_many_packets_round_trip() -> None:
    arrivals: list[float | None] = [1.0 + i * 0.001 for i in range(300)]
    arrivals[50:120] = [None] * 70
    fb = parse_feedback(build_feedback(base_seq=65500, arrivals=arrivals))
    assert (
        len(fb.packets) == 300 and fb.packets[0][0] == 65500 and fb.packets[-1][0] == (65500 + 299) & 0xFFFF
    )
    assert sum(a is None for _, a in fb.packets) == 70
    assert fb.packets[-1][1] == pytest.approx(1.299, abs=0.00025)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p[:16],  # shorter than the fixed part
        lambda p: p[:-4],  # the length field says more than there is
        lambda p: bytes([p[0] & ~0x1F | 1]) + p[1:],  # FMT 1 (NACK)
        lambda p: p[:2] + struct.pack("!H", 5) + p[4:24],  # status chunks but no deltas
    ],
)
def test_malformed_packets_raise(mutate: object) -> None:
    packet = build_feedback(base_seq=1, arrivals=[1.0, 1.001, 1.002])
    with pytest.raises(ValueError):
        parse_feedback(mutate(packet))  # type: ignore[operator]


def test_reference_time_unwraps() -> None:
    assert unwrap_reference(None, 5) == 5
    assert unwrap_reference(5, 7) == 7
    assert unwrap_reference((1 << 24) - 2, 1) == (1 << 24) + 1
    assert unwrap_reference((1 << 24) + 1, (1 << 24) - 3) == (1 << 24) - 3


def test_send_history_matches_16_bit_sequence_numbers_once() -> None:
    history = SendHistory(size=16)
    for seq in range(65530, 65536 + 6):
        history.add(seq & 0xFFFF, seq * 0.001, 1000 + seq % 7, probe=seq % 2 == 0)
    first = history.result(3, 42.0)
    assert first is not None and first.sent_at == pytest.approx((65536 + 3) * 0.001)
    assert first.arrival == 42.0 and first.size == 1000 + (65536 + 3) % 7
    assert history.result(3, 43.0) is None  # reported once
    assert history.result(65529, None) is None  # never sent (or overwritten)
    lost = history.result(65535, None)
    assert lost is not None and lost.arrival is None
    with pytest.raises(ValueError):
        SendHistory(size=1000)
