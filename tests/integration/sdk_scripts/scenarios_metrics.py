"""A session held open for an observer: the SFU's /metrics is scraped while it runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from livekit import rtc
from sdk_helpers import (
    HEIGHT,
    SAMPLE_RATE,
    WIDTH,
    connect,
    play_tone,
    play_video,
    receive_video,
    track_of,
    wait_for,
)


async def held_session(args: dict[str, Any]) -> dict[str, Any]:
    """A publishes a tone and video, B receives both; both stay until ``args["stop_file"]`` exists
    (at most ``args["hold_s"]`` seconds), publishing all along."""
    a = await connect(args, "alice")
    b = await connect(args, "bob", url_key="url_b")
    stop = asyncio.Event()
    audio = rtc.AudioSource(SAMPLE_RATE, 1)
    video = rtc.VideoSource(WIDTH, HEIGHT)
    mic = rtc.LocalAudioTrack.create_audio_track("mic", audio)
    cam = rtc.LocalVideoTrack.create_video_track("cam", video)
    tasks = [asyncio.create_task(play_tone(audio, stop)), asyncio.create_task(play_video(video, stop))]
    await a.local_participant.publish_track(
        mic, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    cam_opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False)
    await a.local_participant.publish_track(cam, cam_opts)
    await wait_for(lambda: track_of(b, "alice", rtc.TrackKind.KIND_AUDIO), 20, "audio at B")
    b_video = await wait_for(lambda: track_of(b, "alice", rtc.TrackKind.KIND_VIDEO), 20, "video at B")
    size = await asyncio.wait_for(receive_video(b_video, 5), 20)
    stop_file = Path(args["stop_file"])
    try:
        await wait_for(lambda: stop_file.exists(), float(args.get("hold_s", 60)), "the observer's stop file")
        stopped = True
    except TimeoutError:
        stopped = False
    stop.set()
    await asyncio.gather(*tasks)
    await a.disconnect()
    await b.disconnect()
    return {"video_size": size, "stopped_by_observer": stopped}


SCENARIOS = {"held_session": held_session}
