"""Adaptive media scenarios: a simulcast publisher and a subscriber that picks layers.

Run through scenarios.py like the others; official SDK and numpy only.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from livekit import rtc
from sdk_helpers import connect, track_of, wait_for

HD = (1280, 720)
FPS = 15


async def _play_hd(source: rtc.VideoSource, stop: asyncio.Event) -> None:
    """A moving pattern (motion keeps every simulcast layer encoding real frames)."""
    width, height = HD
    base = np.zeros((height, width, 4), dtype=np.uint8)
    base[:, :, 3] = 255
    i = 0
    while not stop.is_set():
        frame = base.copy()
        x = (i * 16) % width
        frame[:, max(0, x - 80) : x, 0] = 255
        frame[(i * 8) % height :, :, 1] = 128
        source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, frame.tobytes()))
        i += 1
        await asyncio.sleep(1 / FPS)


async def quality(args: dict[str, Any]) -> dict[str, Any]:
    """Alice publishes 720p with simulcast; Bob asks HIGH, LOW, MEDIUM, HIGH in turn
    (``set_video_quality``) and records the resolution of the frames he decodes after each request."""
    alice = await connect(args, "alice")
    bob = await connect(args, "bob", url_key="url_b")
    qualities_seen: dict[str, str] = {}
    bob.on(
        "connection_quality_changed",
        lambda participant, q: qualities_seen.__setitem__(participant.identity, getattr(q, "name", str(q))),
    )
    stop = asyncio.Event()
    source = rtc.VideoSource(*HD)
    cam = rtc.LocalVideoTrack.create_video_track("cam", source)
    player = asyncio.create_task(_play_hd(source, stop))
    codec = rtc.VideoCodec.H264 if args.get("codec") == "h264" else rtc.VideoCodec.VP8
    opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=True, video_codec=codec)
    published = await alice.local_participant.publish_track(cam, opts)
    track = await wait_for(lambda: track_of(bob, "alice", rtc.TrackKind.KIND_VIDEO), 30, "video at bob")
    remote = bob.remote_participants["alice"].track_publications[published.sid]
    sizes: list[tuple[float, int, int]] = []

    async def collect() -> None:
        stream = rtc.VideoStream(track)
        async for event in stream:
            sizes.append((time.monotonic(), event.frame.width, event.frame.height))

    collector = asyncio.create_task(collect())
    steps: list[dict[str, Any]] = []
    qualities = [("HIGH", rtc.VideoQuality.VIDEO_QUALITY_HIGH), ("LOW", rtc.VideoQuality.VIDEO_QUALITY_LOW)]
    qualities += [
        ("MEDIUM", rtc.VideoQuality.VIDEO_QUALITY_MEDIUM),
        ("HIGH", rtc.VideoQuality.VIDEO_QUALITY_HIGH),
    ]
    previous: tuple[int, int] | None = None
    try:
        for name, value in qualities:
            remote.set_video_quality(value)
            asked = time.monotonic()

            def settled(asked: float = asked, previous: tuple[int, int] | None = previous) -> Any:
                """Ten frames in a row of one size since the request, other than the previous
                step's (the first step accepts any size)."""
                recent = [(w, h) for t, w, h in sizes if t >= asked][-10:]
                if len(recent) < 10 or len(set(recent)) != 1:
                    return None
                return recent[-1] if recent[-1] != previous else None

            try:
                size = await wait_for(settled, 15, f"frames after {name}")
            except TimeoutError:
                size = None
            after = sorted({(w, h) for t, w, h in sizes if t >= asked})
            steps.append(
                {
                    "quality": name,
                    "size": list(size) if size else None,
                    "seconds": round(time.monotonic() - asked, 2),
                    "seen": after,
                }
            )
            previous = tuple(size) if size else previous
    finally:
        collector.cancel()
        stop.set()
        await asyncio.gather(player, collector, return_exceptions=True)
    await wait_for(lambda: len(qualities_seen) == 2, 15, "connection quality of both at bob")
    result = {"steps": steps, "frames": len(sizes), "connection_quality": qualities_seen}
    await alice.disconnect()
    await bob.disconnect()
    return result


SCENARIOS = {"quality": quality}
