"""Helpers shared by the SDK scenarios (run under livekit 1.2.x or 1.1.x; official SDK and numpy only)."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from typing import Any

import numpy as np
from livekit import api, rtc

SAMPLE_RATE = 48000
TONE_HZ = 440.0
WIDTH, HEIGHT = 320, 240


_STARTED = time.monotonic()


def step(what: str) -> None:
    """A progress line on stderr: a scenario that times out shows where it stood."""
    print(f"[{time.monotonic() - _STARTED:7.2f}s] {what}", file=sys.stderr, flush=True)


def token(args: dict[str, Any], identity: str, **grants: Any) -> str:
    video = api.VideoGrants(room_join=True, room=args["room"], **grants)
    return (
        api.AccessToken(args["key"], args["secret"])
        .with_identity(identity)
        .with_name(identity)
        .with_grants(video)
        .to_jwt()
    )


async def connect(args: dict[str, Any], identity: str, url_key: str = "url", **kw: Any) -> rtc.Room:
    room = rtc.Room()
    grants = kw.pop("grants", {})
    if args.get("path") == "v0":  # the SDK default is /rtc/v1 (single peer connection)
        kw["single_peer_connection"] = False
    step(f"{identity} connects")
    await asyncio.wait_for(
        room.connect(args[url_key], token(args, identity, **grants), options=rtc.RoomOptions(**kw)), 30
    )
    step(f"{identity} connected as {room.local_participant.sid}")
    return room


async def wait_for(check: Any, timeout: float, what: str) -> Any:
    step(f"waiting for {what}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            step(f"got {what}")
            return value
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


async def play_tone(source: rtc.AudioSource, stop: asyncio.Event, hz: float = TONE_HZ) -> None:
    samples = SAMPLE_RATE // 100
    t = 0
    while not stop.is_set():
        n = np.arange(t, t + samples)
        data = (np.sin(2 * math.pi * hz * n / SAMPLE_RATE) * 12000).astype(np.int16)
        frame = rtc.AudioFrame(data.tobytes(), SAMPLE_RATE, 1, samples)
        await source.capture_frame(frame)
        t += samples


async def play_video(source: rtc.VideoSource, stop: asyncio.Event) -> None:
    i = 0
    while not stop.is_set():
        buf = np.full((HEIGHT, WIDTH, 4), (i * 3) % 255, dtype=np.uint8)
        buf[:, : WIDTH // 2, 0] = 255
        source.capture_frame(rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, buf.tobytes()))
        i += 1
        await asyncio.sleep(1 / 30)


def dominant_frequency(samples: np.ndarray) -> float:
    samples = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    return float(freqs[int(np.argmax(spectrum))])


async def receive_audio(track: rtc.Track, seconds: float) -> float:
    stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
    chunks: list[np.ndarray] = []
    got = 0
    async for event in stream:
        data = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
        if np.abs(data).max(initial=0) > 1000:  # skip the silent start
            chunks.append(data)
            got += len(data)
        if got >= SAMPLE_RATE * seconds:
            break
    await stream.aclose()
    return dominant_frequency(np.concatenate(chunks))


async def receive_video(track: rtc.Track, frames: int) -> list[int]:
    stream = rtc.VideoStream(track)
    size = [0, 0]
    count = 0
    async for event in stream:
        size = [event.frame.width, event.frame.height]
        count += 1
        if count >= frames:
            break
    await stream.aclose()
    return size


def track_of(room: rtc.Room, identity: str, kind: int) -> rtc.Track | None:
    for p in room.remote_participants.values():
        if p.identity != identity:
            continue
        for pub in p.track_publications.values():
            if pub.kind == kind and pub.track is not None:
                return pub.track
    return None
