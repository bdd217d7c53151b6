"""Egress worker CPU per recorded track (track egress: no transcoding), Python SDK publishers.

Starts its own stack with every service and one egress worker (local storage in a temporary
directory). One SDK participant publishes the tracks (a tone per audio track; 640x360 VP8 at 30 fps
for video); ``livekit-api`` starts a track egress per track, the recording runs ``RECORD_S`` seconds,
then StopEgress. Measured: the worker process's CPU seconds (utime + stime from ``/proc``) over the
recording window, divided by the recorded seconds and the track count, and the bytes written.
LiveKit egress reserves 0.5 CPU per track egress (its ``cpu_cost.track_cpu_cost`` default, the
figure its admission uses): the comparison row is that reservation, not a LiveKit measurement.
The bench sets ``egress.cpu_costs.track`` to 0.1 so that four recordings fit one 2-core worker.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from livekit import api, rtc

from parley.devprocs import SERVICES
from parley.testing.stack import Stack

RECORD_S = 20.0
WIDTH, HEIGHT = 640, 360
CASES = (("1 audio track", 1, 0), ("4 audio tracks", 4, 0), ("1 video track (VP8 640x360, 30 fps)", 0, 1))
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _tone(source: rtc.AudioSource, hz: float) -> None:
    n, t = 480, 0
    while True:
        x = np.arange(t, t + n)
        data = (np.sin(2 * np.pi * hz * x / 48000) * 8000).astype(np.int16)
        await source.capture_frame(rtc.AudioFrame(data.tobytes(), 48000, 1, n))
        t += n


async def _video(source: rtc.VideoSource) -> None:
    i = 0
    while True:
        buf = np.full((HEIGHT, WIDTH, 4), (i * 3) % 255, dtype=np.uint8)
        buf[:, : (i * 4) % WIDTH, 1] = 200
        source.capture_frame(rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, buf.tobytes()))
        i += 1
        await asyncio.sleep(1 / 30)


async def _case(stack: Stack, lkapi: api.LiveKitAPI, audio: int, video: int) -> tuple[float, int, float]:
    """(worker cores per track, bytes per track-second, recorded seconds)."""
    name = f"bench-egress-{uuid.uuid4().hex[:6]}"
    await lkapi.room.create_room(api.CreateRoomRequest(name=name))
    token = (
        api.AccessToken(stack.api_key, stack.api_secret)
        .with_identity("pub")
        .with_grants(api.VideoGrants(room_join=True, room=name))
        .to_jwt()
    )
    room = rtc.Room()
    await room.connect(stack.ws_url, token)
    tasks: list[asyncio.Task[None]] = []
    sids: list[str] = []
    try:
        for i in range(audio):
            source = rtc.AudioSource(48000, 1)
            tasks.append(asyncio.create_task(_tone(source, 300 + 100 * i)))
            pub = await room.local_participant.publish_track(
                rtc.LocalAudioTrack.create_audio_track(f"a{i}", source),
                rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
            )
            sids.append(pub.sid)
        for i in range(video):
            vsource = rtc.VideoSource(WIDTH, HEIGHT)
            tasks.append(asyncio.create_task(_video(vsource)))
            pub = await room.local_participant.publish_track(
                rtc.LocalVideoTrack.create_video_track(f"v{i}", vsource),
                rtc.TrackPublishOptions(
                    source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False, video_codec=rtc.VideoCodec.VP8
                ),
            )
            sids.append(pub.sid)
        await asyncio.sleep(2)  # media flowing before the recording starts
        ids = []
        for sid in sids:
            info = await lkapi.egress.start_track_egress(
                api.TrackEgressRequest(
                    room_name=name, track_id=sid, file=api.DirectFileOutput(filepath=f"{name}/{{track_id}}")
                )
            )
            ids.append(info.egress_id)
        pid = stack.get("egress-worker").process.proc.pid  # type: ignore[union-attr]
        await asyncio.sleep(2)  # every recording active
        cpu0, t0 = _cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(RECORD_S)
        cpu1, t1 = _cpu_seconds(pid), time.monotonic()
        for egress_id in ids:
            await lkapi.egress.stop_egress(api.StopEgressRequest(egress_id=egress_id))
        total = 0
        for egress_id in ids:
            for _ in range(100):
                items = (await lkapi.egress.list_egress(api.ListEgressRequest(egress_id=egress_id))).items
                if items[0].status == api.EgressStatus.EGRESS_COMPLETE:
                    total += items[0].file_results[0].size
                    break
                await asyncio.sleep(0.2)
        span = t1 - t0
        recorded = RECORD_S + 4
        return (cpu1 - cpu0) / span / len(sids), int(total / recorded / len(sids)), span
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await room.disconnect()


async def run() -> str:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-egress-") as tmp:
        stack = Stack(
            log_dir=Path(tmp) / "stack",
            services=SERVICES,
            config={
                "egress_worker": {"local_dir": str(Path(tmp) / "recordings")},
                # LiveKit's 0.5 cores per track would admit 3 tracks on 2 cores; what they cost is measured here
                "egress": {"cpu_costs": {"track": 0.1}},
            },
        ).start()
        lkapi = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
        rows = []
        try:
            for label, audio, video in CASES:
                cores, rate, _ = await _case(stack, lkapi, audio, video)
                rows.append(
                    f"| {label} | {cores * 1000:.1f} m | {rate / 1000:.1f} kB/s | {0.5 / cores if cores else 0:.0f}x |"
                )
        finally:
            await lkapi.aclose()
            stack.stop()
    return "\n".join(
        [
            "## egress (bench_egress)",
            "",
            f"Track egress without transcoding, {RECORD_S:g} s per case; worker CPU over the recording window "
            f"(load average {load:.1f} before the run). LiveKit reserves 0.5 cores (500 m) per track egress.",
            "",
            "| case | worker CPU per track (millicores) | written per track | LiveKit's reservation / ours |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )
