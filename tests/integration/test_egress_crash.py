"""An egress worker SIGKILLed mid-recording: another worker continues the job as its next part.

Two egress workers, local storage (recorded in place). The official SDK publishes a 440 Hz tone;
``livekit-api`` starts a track egress; once ACTIVE, the worker holding it is SIGKILLed. Its lease
expires (``egress.lease``), the controller offers part 1 to the other worker, which reports the lost
part's file and records its own (``-1``); the SFU's tap moves to it. StopEgress then ends the job
COMPLETE with two file results, both read by FFmpeg (Opus, the 440 Hz tone). The gap between the
parts (lease expiry + the next worker's start) is printed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from livekit import api, rtc
from livekit.protocol import egress as lk

from parley.auth import Claims, VideoGrant, create_token
from parley.devprocs import SERVICES
from parley.testing import Stack, load_script, poll_until

pytestmark = [pytest.mark.integration, pytest.mark.sdk]

LEASE_S = 4.0
sources = load_script(Path(__file__).with_name("sdk_sources.py"), "sdk_sources")


def _size(path: Path) -> int:
    return path.stat().st_size


def _dominant_hz(path: Path) -> tuple[str, float, float]:
    """(codec, seconds of audio, dominant frequency) as FFmpeg decodes the file."""
    with av.open(str(path), mode="r") as container:
        stream = container.streams.audio[0]
        frames = list(container.decode(stream))
        codec = stream.codec_context.name
    samples = np.concatenate([f.to_ndarray()[0] for f in frames]).astype(np.float64)
    seconds = len(samples) / frames[0].sample_rate
    samples = samples[len(samples) // 4 :]
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return codec, seconds, float(np.fft.rfftfreq(len(samples), 1 / 48000)[int(np.argmax(spectrum))])


async def test_a_killed_worker_is_continued_by_another_as_the_next_part(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    recordings = tmp_path / "recordings"
    stack = make_stack(
        services=SERVICES,
        instances={"egress-worker": 2},
        config={"egress": {"lease": LEASE_S}, "egress_worker": {"local_dir": str(recordings)}},
    )
    lkapi = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    room = rtc.Room()
    pump: asyncio.Task[None] | None = None
    try:
        await lkapi.room.create_room(api.CreateRoomRequest(name="crash"))
        token = create_token(
            stack.api_key,
            stack.api_secret,
            Claims(identity="alice", name="alice", video=VideoGrant(room_join=True, room="crash")),
        )
        await room.connect(stack.ws_url, token)
        source = rtc.AudioSource(48000, 1)
        pump = asyncio.create_task(sources.tone(source))
        mic = await room.local_participant.publish_track(
            rtc.LocalAudioTrack.create_audio_track("mic", source),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
        )
        started = await lkapi.egress.start_track_egress(
            api.TrackEgressRequest(
                room_name="crash",
                track_id=mic.sid,
                file=api.DirectFileOutput(filepath="crash/{track_id}.ogg"),
            )
        )
        egress_id = started.egress_id

        async def info() -> lk.EgressInfo:
            items = (await lkapi.egress.list_egress(api.ListEgressRequest(egress_id=egress_id))).items
            return items[0]

        async def active() -> bool:
            return (await info()).status == lk.EgressStatus.EGRESS_ACTIVE

        await poll_until(active, timeout=30, message="ACTIVE")
        await asyncio.sleep(3)

        # the worker holding the job: the one whose log accepted it
        holder = next(
            w
            for w in stack.all("egress-worker")
            if f"egress_id={egress_id}" in (stack.log_dir / f"{w.process.name}.log").read_text()
        )
        holder.process.kill()
        killed_at = time.monotonic()

        async def continued() -> lk.EgressInfo | None:
            current = await info()
            ok = (
                current.retry_count == 1
                and len(current.file_results) == 2
                and current.file_results[1].started_at
            )
            return current if ok else None

        during = await poll_until(continued, timeout=LEASE_S + 30, message="part 1 recording")
        resumed_s = time.monotonic() - killed_at
        assert during is not None and during.status == lk.EgressStatus.EGRESS_ACTIVE  # never FAILED or ended
        await asyncio.sleep(3)
        await lkapi.egress.stop_egress(api.StopEgressRequest(egress_id=egress_id))

        async def complete() -> lk.EgressInfo | None:
            current = await info()
            return current if current.status == lk.EgressStatus.EGRESS_COMPLETE else None

        done = await poll_until(complete, timeout=30, message="COMPLETE")
    finally:
        if pump is not None:
            pump.cancel()
        await room.disconnect()
        await lkapi.aclose()

    assert done is not None and done.retry_count == 1
    first, second = done.file_results
    assert (first.filename, second.filename) == (f"crash/{mic.sid}.ogg", f"crash/{mic.sid}-1.ogg")
    for result in (first, second):
        path = Path(result.location)
        assert path == recordings / result.filename and result.size == _size(path) > 0
        codec, seconds, hz = _dominant_hz(path)
        assert codec == "opus" and abs(hz - 440) < 5
        assert abs(seconds - result.duration / 1e9) < 0.5, (result.filename, seconds, result.duration)
    # each part holds its time: up to the last page flushed (about 0.5 s) is lost with a killed worker
    assert first.duration / 1e9 > 2.0 and second.duration / 1e9 > 2.5
    gap_s = (second.started_at - first.ended_at) / 1e9
    print(
        f"\nworker killed -> part 1 recording: {resumed_s:.1f} s (lease {LEASE_S:g} s); gap between parts {gap_s:.1f} s"
    )
    assert 0 < gap_s < LEASE_S + 15
