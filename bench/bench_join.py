"""Join time (Room.connect() until connected) and time to the first audio frame, Python SDK.

Starts its own stack (room-state, sfu, signaling) with ``parley.testing.stack.Stack``.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from livekit import api, rtc

from parley.testing.stack import Stack

JOINS = 30
FIRST_AUDIO = 10
SAMPLE_RATE = 48000


def _token(stack: Stack, room: str, identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    return (
        api.AccessToken(stack.api_key, stack.api_secret).with_identity(identity).with_grants(grants).to_jwt()
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def _tone(source: rtc.AudioSource, stop: asyncio.Event) -> None:
    n = SAMPLE_RATE // 100
    t = 0
    while not stop.is_set():
        x = np.arange(t, t + n)
        data = (np.sin(2 * math.pi * 440 * x / SAMPLE_RATE) * 10000).astype(np.int16)
        await source.capture_frame(rtc.AudioFrame(data.tobytes(), SAMPLE_RATE, 1, n))
        t += n


async def _join_times(stack: Stack) -> list[float]:
    room_name = f"bench-{uuid.uuid4().hex[:6]}"
    times: list[float] = []
    for i in range(JOINS):
        room = rtc.Room()
        start = time.perf_counter()
        await room.connect(stack.ws_url, _token(stack, room_name, f"j{i}"))
        times.append((time.perf_counter() - start) * 1000)
        await room.disconnect()
    return times


async def _first_audio_times(stack: Stack) -> list[float]:
    room_name = f"bench-audio-{uuid.uuid4().hex[:6]}"
    publisher = rtc.Room()
    await publisher.connect(stack.ws_url, _token(stack, room_name, "speaker"))
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    stop = asyncio.Event()
    tone = asyncio.create_task(_tone(source, stop))
    await publisher.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    times: list[float] = []
    try:
        for i in range(FIRST_AUDIO):
            listener = rtc.Room()
            got: asyncio.Future[rtc.Track] = asyncio.get_running_loop().create_future()

            def on_sub(
                t: rtc.Track,
                pub: rtc.RemoteTrackPublication,
                p: rtc.RemoteParticipant,
                got: asyncio.Future[rtc.Track] = got,
            ) -> None:
                if not got.done():
                    got.set_result(t)

            listener.on("track_subscribed", on_sub)
            start = time.perf_counter()
            await listener.connect(stack.ws_url, _token(stack, room_name, f"l{i}"))
            remote = await asyncio.wait_for(got, 20)
            stream = rtc.AudioStream(remote, sample_rate=SAMPLE_RATE, num_channels=1)
            async for event in stream:
                if np.abs(np.frombuffer(bytes(event.frame.data), dtype=np.int16)).max(initial=0) > 1000:
                    break
            times.append((time.perf_counter() - start) * 1000)
            await stream.aclose()
            await listener.disconnect()
    finally:
        stop.set()
        await tone
        await publisher.disconnect()
    return times


async def run() -> str:
    with tempfile.TemporaryDirectory(prefix="parley-bench-join-") as tmp:
        stack = Stack(log_dir=Path(tmp), services=["room-state", "sfu", "signaling"])
        await asyncio.to_thread(stack.start)
        try:
            joins = await _join_times(stack)
            audio = await _first_audio_times(stack)
        finally:
            await asyncio.to_thread(stack.stop)
    rows = [
        ("join: connect() to connected", joins),
        ("connect() to first audible audio frame", audio),
    ]
    lines = [
        "## join",
        "",
        f"Python SDK livekit {rtc.__version__} (over /rtc/v1, single peer connection), one room-state, "
        "one SFU, one edge on loopback; sequential joins. Command: `python -m bench join`.",
        "",
        "| measure | n | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|",
    ]
    for name, values in rows:
        lines.append(
            f"| {name} | {len(values)} | {_pct(values, 0.5):.0f} | {_pct(values, 0.99):.0f} | "
            f"{statistics.fmean(values):.0f} |"
        )
    return "\n".join(lines) + "\n"
