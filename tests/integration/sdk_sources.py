"""Media the Python SDK publishes in tests: a sine tone and moving video frames, until cancelled.

Loaded by the tests with ``parley.testing.load_script`` (it is not a package).
"""

from __future__ import annotations

import asyncio

import numpy as np
from livekit import rtc

RATE = 48000


async def tone(source: rtc.AudioSource, hz: float = 440.0, amplitude: int = 8000) -> None:
    """10 ms mono frames of a sine at ``hz``, paced by the source's queue."""
    per_frame, n = RATE // 100, 0
    while True:
        t = (np.arange(per_frame) + n * per_frame) / RATE
        data = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)
        await source.capture_frame(rtc.AudioFrame(data.tobytes(), RATE, 1, per_frame))
        n += 1


async def frames(source: rtc.VideoSource, width: int, height: int, fps: float = 30.0) -> None:
    """RGBA frames whose shade changes every frame (half of each one red)."""
    i = 0
    while True:
        buf = np.full((height, width, 4), (i * 3) % 255, dtype=np.uint8)
        buf[:, : width // 2, 0] = 255
        source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, buf.tobytes()))
        i += 1
        await asyncio.sleep(1 / fps)
