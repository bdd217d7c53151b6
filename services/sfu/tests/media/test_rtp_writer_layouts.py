"""``RtpWriter.write``'s precomputed one-byte layouts against ``write_reference`` (element by element):
the same bytes for every combination of negotiated extensions and per-packet fields."""

from __future__ import annotations

import itertools
import random

import pytest
from aiortc.rtp import RtpPacket

from parley.sfu.media.aiortc_internals import URI_ABS_SEND_TIME, URI_AUDIO_LEVEL, URI_MID, URI_TWCC
from parley.sfu.media.rtp_writer import RtpWriter

pytestmark = pytest.mark.unit

URIS = (URI_MID, URI_AUDIO_LEVEL, URI_ABS_SEND_TIME, URI_TWCC)


def _negotiations() -> list[tuple[dict[str, int], str | None]]:
    """Every subset of the four extensions with one-byte ids, a few with ids only the two-byte form
    carries, and mids of several lengths (none, short, 16: the one-byte limit, 17)."""
    out: list[tuple[dict[str, int], str | None]] = []
    for n in range(len(URIS) + 1):
        for subset in itertools.combinations(URIS, n):
            for mid in (None, "0", "12", "abcdefghijklmnop", "abcdefghijklmnopq"):
                out.append(({uri: i + 1 for i, uri in enumerate(subset)}, mid))
    out.append(({URI_MID: 3, URI_AUDIO_LEVEL: 15, URI_ABS_SEND_TIME: 2}, "1"))
    out.append(({URI_MID: 20, URI_TWCC: 5}, "2"))
    out.append(({URI_MID: 14, URI_AUDIO_LEVEL: 13, URI_ABS_SEND_TIME: 12, URI_TWCC: 11}, "3"))
    return out


def _packet(rng: random.Random) -> RtpPacket:
    packet = RtpPacket(
        payload_type=rng.randrange(128),
        marker=rng.randrange(2),
        sequence_number=rng.randrange(1 << 16),
        timestamp=rng.randrange(1 << 32),
        ssrc=rng.randrange(1 << 32),
        payload=bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))),
    )
    if rng.random() < 0.6:
        packet.extensions.audio_level = (rng.random() < 0.5, rng.randrange(128))
    if rng.random() < 0.1:
        packet.csrc = [rng.randrange(1 << 32) for _ in range(rng.randrange(1, 4))]
    return packet


def test_fast_layouts_write_the_reference_bytes() -> None:
    rng = random.Random(15)
    checked = 0
    for ids, mid in _negotiations():
        writer = RtpWriter(ids, mid)
        for _ in range(40):
            packet = _packet(rng)
            fields = {
                "payload_type": rng.randrange(128),
                "seq": rng.randrange(1 << 16),
                "ts": rng.randrange(1 << 32),
                "ssrc": rng.randrange(1 << 32),
                "wall_now": 1.7e9 + rng.random() * 1e6,
                "head": bytes(
                    rng.randrange(256) for _ in range(min(len(packet.payload), rng.choice((0, 0, 4))))
                ),
                "osn": rng.choice((None, rng.randrange(1 << 16))),
                "twcc_seq": rng.choice((None, rng.randrange(1 << 20))),
            }
            fast = writer.write(packet, **fields)  # type: ignore[arg-type]
            assert fast == writer.write_reference(packet, **fields), (ids, mid, fields)  # type: ignore[arg-type]
            checked += 1
    assert checked > 3000


def test_the_fast_layout_is_taken_for_one_byte_headers_only() -> None:
    assert RtpWriter({URI_MID: 1, URI_AUDIO_LEVEL: 2, URI_ABS_SEND_TIME: 3, URI_TWCC: 4}, "0")._layouts
    assert RtpWriter({URI_MID: 1, URI_AUDIO_LEVEL: 15}, "0")._layouts is None
    assert RtpWriter({URI_MID: 1}, "abcdefghijklmnopq")._layouts is None
