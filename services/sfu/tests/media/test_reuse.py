"""A freed m-line (its DownTrack closed) carries another track after renegotiation, on the same SSRC,
continuing its sequence numbers and timestamps, so the subscriber's SRTP and decoders accept it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpTransceiver
from aiortc.rtp import RtpPacket

from parley.sfu.media import DownTrack, new_peer_connection
from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media.errors import SenderInUseError
from parley.testing import poll_until

pytestmark = pytest.mark.integration

SAMPLE_RATE = 48000
Room = Any


async def _negotiate(sfu: RTCPeerConnection, sub: RTCPeerConnection) -> str:
    """v0: the SFU offers, the subscriber answers; returns the offer."""
    await sfu.setLocalDescription(await sfu.createOffer())
    offer = sfu.localDescription.sdp
    await sub.setRemoteDescription(sfu.localDescription)
    await sub.setLocalDescription(await sub.createAnswer())
    await sfu.setRemoteDescription(sub.localDescription)
    return offer


def _dominant(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(pcm.size)))
    return float(np.fft.rfftfreq(pcm.size, 1 / SAMPLE_RATE)[int(np.argmax(spectrum))])


async def _consume(track: MediaStreamTrack, frames: list[av.AudioFrame | av.VideoFrame]) -> None:
    while True:
        frames.append(await track.recv())  # type: ignore[arg-type]


def _audio_after(frames: list[Any], start: int) -> np.ndarray:
    chunks = [f.to_ndarray().reshape(-1, len(f.layout.channels))[:, 0] for f in frames[start:]]
    return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)


async def test_a_freed_m_line_carries_another_track_on_a_continuous_stream(
    publisher: Callable[..., Awaitable[Room]],
) -> None:
    room_a = await publisher(frequency=440.0, size=(320, 240))
    room_b = await publisher(frequency=1200.0, size=(160, 120))
    sfu = new_peer_connection()
    sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tracks: dict[str, MediaStreamTrack] = {}
    sub.on("track", lambda t: tracks.setdefault(t.kind, t))
    frames: dict[str, list[Any]] = {"audio": [], "video": []}
    consumers: list[asyncio.Task[None]] = []
    try:
        downs = {
            kind: DownTrack.attach(
                sfu,
                room_a.ups[kind],
                stream_id=f"PA_a|TR_a{kind}",
                track_id=f"TR_a{kind}",
                context=room_a.context,
            )
            for kind in ("audio", "video")
        }
        first_offer = await _negotiate(sfu, sub)
        await poll_until(lambda: len(tracks) == 2, timeout=20, message="subscriber tracks")
        seen: dict[str, list[RtpPacket]] = {"audio": [], "video": []}
        ssrcs = {kind: down.ssrc for kind, down in downs.items()}
        for t in sub.getTransceivers():
            kind = t.kind

            def observe(p: RtpPacket, _t: int, kind: str = kind) -> None:
                if p.ssrc == ssrcs[kind]:
                    seen[kind].append(p)

            internals.tap_receiver_rtp(t.receiver, observe)
        consumers = [asyncio.create_task(_consume(tracks[k], frames[k])) for k in ("audio", "video")]
        await poll_until(
            lambda: (
                any((f.width, f.height) == (320, 240) for f in frames["video"])
                and _audio_after(frames["audio"], 0).size > SAMPLE_RATE
            ),
            timeout=20,
            message="A's media decoded",
        )
        assert abs(_dominant(_audio_after(frames["audio"], 0)[-SAMPLE_RATE // 2 :]) - 440) < 10

        # A ends: close its DownTracks, the next offer makes the m-lines inactive
        transceivers: dict[str, RTCRtpTransceiver] = {k: d.transceiver for k, d in downs.items()}
        for kind, down in downs.items():
            down.close()
            transceivers[kind].direction = "inactive"
        assert (await _negotiate(sfu, sub)).count("a=inactive") == 2
        await poll_until(
            lambda: room_a.ups["audio"].packets_received > 50 + len(seen["audio"]), message="time"
        )
        mark = {kind: len(seen[kind]) for kind in seen}
        frame_mark = {kind: len(frames[kind]) for kind in frames}

        # B on the same m-lines: same SSRCs, new msid, continuing sequence numbers and timestamps
        reused = {
            kind: DownTrack.attach(
                sfu,
                room_b.ups[kind],
                stream_id=f"PA_b|TR_b{kind}",
                track_id=f"TR_b{kind}",
                transceiver=t,
                context=room_a.context,
            )
            for kind, t in transceivers.items()
        }
        with pytest.raises(SenderInUseError):
            DownTrack.attach(
                sfu,
                room_a.ups["audio"],
                stream_id="x",
                track_id="y",
                transceiver=transceivers["audio"],
                context=room_a.context,
            )
        offer = await _negotiate(sfu, sub)
        assert "a=msid:PA_b|TR_baudio TR_baudio" in offer and "a=msid:PA_b|TR_bvideo TR_bvideo" in offer
        for kind, down in reused.items():
            assert down.ssrc == ssrcs[kind] and f"a=ssrc:{down.ssrc} " in first_offer

        await poll_until(
            lambda: (
                any((f.width, f.height) == (160, 120) for f in frames["video"][frame_mark["video"] :])
                and _audio_after(frames["audio"], frame_mark["audio"]).size > SAMPLE_RATE
            ),
            timeout=20,
            message="B's media decoded on the reused m-lines",
        )
        assert (
            abs(_dominant(_audio_after(frames["audio"], frame_mark["audio"])[-SAMPLE_RATE // 2 :]) - 1200)
            < 10
        )
        for kind in ("audio", "video"):
            before, after = seen[kind][mark[kind] - 1], seen[kind][mark[kind]]
            assert (after.sequence_number - before.sequence_number) & 0xFFFF == 1, kind
            gap = (after.timestamp - before.timestamp) & 0xFFFFFFFF
            assert 0 < gap < 0x80000000, kind  # time moved forward
            assert reused[kind].packets_sent > 0
    finally:
        for task in consumers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for pc in (sfu, sub):
            await pc.close()
        await room_a.close()
        await room_b.close()


async def test_v1_a_client_offered_m_line_is_reused_after_an_inactive_answer(room: Room) -> None:
    """v1: the client offers recvonly m-lines, the SFU answers. A's m-line is answered inactive once,
    then carries B (here: the same publisher's audio again under another track id)."""
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sfu = new_peer_connection()
    room.pcs += [client, sfu]
    client.addTransceiver("audio", direction="recvonly")

    async def client_offers() -> None:
        await client.setLocalDescription(await client.createOffer())
        await sfu.setRemoteDescription(client.localDescription)

    async def sfu_answers() -> str:
        await sfu.setLocalDescription(await sfu.createAnswer())
        await client.setRemoteDescription(sfu.localDescription)
        return str(sfu.localDescription.sdp)

    await client_offers()
    [transceiver] = sfu.getTransceivers()
    first = DownTrack.attach(
        sfu,
        room.ups["audio"],
        stream_id="PA_p|TR_1",
        track_id="TR_1",
        transceiver=transceiver,
        context=room.context,
    )
    await sfu_answers()
    seen: list[RtpPacket] = []
    internals.tap_receiver_rtp(client.getTransceivers()[0].receiver, lambda p, _t: seen.append(p))
    await poll_until(lambda: len(seen) > 20, timeout=20, message="A on the client's m-line")

    first.close()
    transceiver.direction = "recvonly"  # what single_pc.detach does: inactive in the next answer
    await client_offers()
    assert "a=inactive" in await sfu_answers()
    mark = len(seen)

    await client_offers()
    second = DownTrack.attach(
        sfu,
        room.ups["audio"],
        stream_id="PA_p|TR_2",
        track_id="TR_2",
        transceiver=transceiver,
        context=room.context,
    )
    answer = await sfu_answers()
    assert "a=sendonly" in answer and "a=msid:PA_p|TR_2 TR_2" in answer
    await poll_until(lambda: len(seen) > mark + 20, timeout=20, message="B on the reused m-line")
    assert second.ssrc == first.ssrc and second.packets_sent > 0
    assert (seen[mark].sequence_number - seen[mark - 1].sequence_number) & 0xFFFF == 1
