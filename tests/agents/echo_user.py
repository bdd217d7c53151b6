"""The user side of the echo test: ``python echo_user.py <json args>``.

Joins the room (which dispatches the echo agent), publishes a 440 Hz tone, waits for the
agent's audio track and prints ``RESULT {"frequency": …, "agent_kind": …}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from typing import Any

import numpy as np
from livekit import api, rtc

SAMPLE_RATE = 48000
TONE_HZ = 440.0


def token(args: dict[str, Any], identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room=args["room"])
    return api.AccessToken(args["key"], args["secret"]).with_identity(identity).with_grants(grants).to_jwt()


async def play_tone(source: rtc.AudioSource, stop: asyncio.Event) -> None:
    samples = SAMPLE_RATE // 100
    t = 0
    while not stop.is_set():
        n = np.arange(t, t + samples)
        data = (np.sin(2 * math.pi * TONE_HZ * n / SAMPLE_RATE) * 12000).astype(np.int16)
        await source.capture_frame(rtc.AudioFrame(data.tobytes(), SAMPLE_RATE, 1, samples))
        t += samples


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[int(np.argmax(spectrum))])


async def main(args: dict[str, Any]) -> dict[str, Any]:
    room = rtc.Room()
    await asyncio.wait_for(room.connect(args["url"], token(args, "echo-user")), 30)
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    await room.local_participant.publish_track(track, opts)
    stop = asyncio.Event()
    player = asyncio.create_task(play_tone(source, stop))
    deadline = time.monotonic() + 60
    agent_track: rtc.Track | None = None
    kind = -1
    while agent_track is None and time.monotonic() < deadline:
        for p in room.remote_participants.values():
            for pub in p.track_publications.values():
                if pub.track is not None and pub.kind == rtc.TrackKind.KIND_AUDIO:
                    agent_track, kind = pub.track, int(p.kind)
        await asyncio.sleep(0.05)
    if agent_track is None:
        raise TimeoutError("no audio track from the agent")
    stream = rtc.AudioStream(agent_track, sample_rate=SAMPLE_RATE, num_channels=1)
    chunks: list[np.ndarray] = []
    got = 0
    async for event in stream:
        data = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
        if np.abs(data).max(initial=0) > 1000:
            chunks.append(data)
            got += len(data)
        if got >= SAMPLE_RATE:
            break
    await stream.aclose()
    stop.set()
    await player
    await room.disconnect()
    return {"frequency": dominant_frequency(np.concatenate(chunks)), "agent_kind": kind}


if __name__ == "__main__":
    result = asyncio.run(main(json.loads(sys.argv[1])))
    print("RESULT " + json.dumps(result), flush=True)
