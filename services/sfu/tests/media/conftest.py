"""Real aiortc peers on loopback around the SFU media engine: publisher -> SFU -> subscriber."""

from __future__ import annotations

import asyncio
import fractions
import functools
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import av
import numpy as np
import pytest
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)

from parley.config import RtcConfig
from parley.sfu.media import (
    DownTrack,
    MediaContext,
    UpTrack,
    configure,
    new_peer_connection,
    prepare_answer,
)

SAMPLE_RATE = 48000
WIDTH, HEIGHT = 320, 240


class SineTrack(AudioStreamTrack):
    """440 Hz sine, 20 ms frames at 48 kHz, paced in real time."""

    def __init__(self, frequency: float = 440.0) -> None:
        super().__init__()
        self._frequency = frequency
        self._pos = 0

    async def recv(self) -> av.AudioFrame:
        samples = SAMPLE_RATE // 50
        if self._pos:
            wait = self._start + self._pos / SAMPLE_RATE - asyncio.get_running_loop().time()
            await asyncio.sleep(max(wait, 0))
        else:
            self._start = asyncio.get_running_loop().time()
        t = (np.arange(samples) + self._pos) / SAMPLE_RATE
        pcm = (0.5 * 32767 * np.sin(2 * math.pi * self._frequency * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pos
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._pos += samples
        return frame


class PatternTrack(VideoStreamTrack):
    """Generated frames (a moving gradient, WIDTHxHEIGHT unless told) at 30 fps."""

    def __init__(self, size: tuple[int, int] = (WIDTH, HEIGHT)) -> None:
        super().__init__()
        self._size = size

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        shift = pts // 3000
        width, height = self._size
        x = (np.arange(width) + shift) % 256
        img = np.zeros((height, width, 3), dtype=np.uint8)
        img[:, :, 0] = x[None, :]
        img[:, :, 1] = (np.arange(height) % 256)[:, None]
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


@dataclass
class Subscriber:
    pc: RTCPeerConnection
    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)
    downs: list[DownTrack] = field(default_factory=list)


@dataclass
class Room:
    """One publisher with its SFU-side peer connection, and any number of subscribers."""

    pub: RTCPeerConnection
    sfu_in: RTCPeerConnection
    ups: dict[str, UpTrack]
    context: MediaContext
    pcs: list[RTCPeerConnection] = field(default_factory=list)

    async def subscribe(self, kinds: tuple[str, ...] = ("audio", "video")) -> Subscriber:
        sfu_out = new_peer_connection(self.context)
        sub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs += [sfu_out, sub]
        subscriber = Subscriber(sub)

        @sub.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            subscriber.tracks[track.kind] = track

        for kind in kinds:
            up = self.ups[kind]
            subscriber.downs.append(
                DownTrack.attach(
                    sfu_out, up, stream_id=f"PA_pub|TR_{kind}", track_id=f"TR_{kind}", context=self.context
                )
            )
        await sfu_out.setLocalDescription(await sfu_out.createOffer())
        await sub.setRemoteDescription(sfu_out.localDescription)
        await sub.setLocalDescription(await sub.createAnswer())
        await sfu_out.setRemoteDescription(sub.localDescription)
        return subscriber

    async def close(self) -> None:
        for up in self.ups.values():
            up.close()
        for pc in [self.pub, self.sfu_in, *self.pcs]:
            await pc.close()


def port_base() -> int:
    return random.randrange(30000, 59000, 500)


@pytest.fixture
def rtc() -> RtcConfig:
    start = port_base()
    config = RtcConfig(
        use_loopback=True, port_range_start=start, port_range_end=start + 400, packet_cache_size=512
    )
    configure(config)  # aiortc's process-wide patches, for tests that take only ``rtc``
    return config


@pytest.fixture
def media(rtc: RtcConfig) -> MediaContext:
    """The media context of the SFU side."""
    return MediaContext.from_config(rtc)


async def publish(
    kinds: tuple[str, ...] = ("audio", "video"),
    *,
    frequency: float = 440.0,
    size: tuple[int, int] = (WIDTH, HEIGHT),
    context: MediaContext,
) -> Room:
    pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for kind in kinds:
        pub.addTrack(SineTrack(frequency) if kind == "audio" else PatternTrack(size))
    await pub.setLocalDescription(await pub.createOffer())
    offer = pub.localDescription.sdp
    sfu_in = new_peer_connection(context)
    await sfu_in.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    ups: dict[str, UpTrack] = {}
    for t in sfu_in.getTransceivers():
        ups[t.kind] = UpTrack(
            t.receiver, kind=t.kind, mid=t.mid or "", track_sid=f"TR_{t.kind}", transceiver=t, context=context
        )
    await sfu_in.setLocalDescription(await sfu_in.createAnswer())
    answer = prepare_answer(offer, sfu_in.localDescription.sdp)
    await pub.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return Room(pub, sfu_in, ups, context)


@pytest.fixture
def publisher(media: MediaContext) -> object:
    return functools.partial(publish, context=media)


@pytest.fixture
def publish_with(rtc: RtcConfig) -> object:
    """``publish`` taking the SFU side's media context (``context=``): several engines in one test."""
    return publish


@pytest.fixture
async def room(media: MediaContext) -> AsyncIterator[Room]:
    r = await publish(context=media)
    try:
        yield r
    finally:
        await r.close()
