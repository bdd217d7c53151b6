"""The client side of ``bench_continuity``: one run, in its own process (so it can run inside a network
namespace), official Python SDK (livekit.rtc) and numpy only.

``python bench/continuity_client.py '<json args>'``: Alice publishes a 440 Hz tone, Bob subscribes and
timestamps every frame his ``AudioStream`` yields (``time.monotonic()``, the same clock as the bench
process: CLOCK_MONOTONIC is not namespaced); one stream per subscription, since a move to another node
subscribes again. After ``settle_s`` of audible audio the client asks the bench to disrupt
(``POST {control}/disrupt?room=``); with ``restore_on_reconnecting`` it asks for
``POST {control}/restore?room=`` as soon as either SDK reports ``reconnecting`` (it noticed the
failure). Once both SDKs are connected again and ``after_s`` of audible audio arrived (or
``deadline_s`` passed) it prints one ``RESULT <json>`` line: event times and Bob's frame times, from
which the bench computes the gap. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from typing import Any

import aiohttp
import numpy as np
from livekit import api, rtc

SAMPLE_RATE = 48000
TONE_HZ = 440.0
AMPLITUDE = 12000
AUDIBLE = 3000
"""A frame whose peak is above this carries the tone (concealment fades below it, silence is 0)."""


def _token(args: dict[str, Any], identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room=args["room"])
    return api.AccessToken(args["key"], args["secret"]).with_identity(identity).with_grants(grants).to_jwt()


async def _tone(source: rtc.AudioSource, stop: asyncio.Event) -> None:
    samples = SAMPLE_RATE // 100
    t = 0
    while not stop.is_set():
        n = np.arange(t, t + samples)
        data = (np.sin(2 * math.pi * TONE_HZ * n / SAMPLE_RATE) * AMPLITUDE).astype(np.int16)
        await source.capture_frame(rtc.AudioFrame(data.tobytes(), SAMPLE_RATE, 1, samples))
        t += samples


async def _until(check: Any, timeout: float, what: str) -> float:
    """Poll ``check()`` every 10 ms; the monotonic time it first held. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        await asyncio.sleep(0.01)
    raise TimeoutError(f"timed out waiting for {what}")


async def run(args: dict[str, Any]) -> dict[str, Any]:
    events: list[tuple[float, str, str]] = []
    """(monotonic time, identity, event)."""
    rooms: dict[str, rtc.Room] = {}
    for name in ("alice", "bob"):
        room = rtc.Room()
        for event in ("reconnecting", "reconnected", "disconnected"):
            room.on(event, lambda *_, name=name, event=event: events.append((time.monotonic(), name, event)))
        await asyncio.wait_for(room.connect(args["url"], _token(args, name)), 30)
        rooms[name] = room
    alice, bob = rooms["alice"], rooms["bob"]
    stop = asyncio.Event()
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    tone = asyncio.create_task(_tone(source, stop))
    track = rtc.LocalAudioTrack.create_audio_track("mic", source)
    opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)

    frames: list[tuple[float, int]] = []
    """(monotonic time, peak amplitude) of every frame Bob's streams yielded."""
    listeners: list[asyncio.Task[None]] = []

    async def listen(track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                data = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
                frames.append((time.monotonic(), int(np.abs(data).max(initial=0))))
        finally:
            await stream.aclose()

    def on_subscribed(track: rtc.Track, *_: Any) -> None:
        """Every audio track Bob gets: after a move to another node Alice's track is a new one."""
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            listeners.append(asyncio.create_task(listen(track)))

    bob.on("track_subscribed", on_subscribed)
    await alice.local_participant.publish_track(track, opts)
    await _until(lambda: frames, 20, "alice's audio at bob")

    def audible_since(t: float, seconds: float) -> bool:
        return sum(1 for at, peak in frames if at >= t and peak > AUDIBLE) * 0.01 >= seconds

    result: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:
        start = time.monotonic()
        await _until(lambda: audible_since(start, args["settle_s"]), 30, "steady audio before")
        result["disrupt_at"] = time.monotonic()
        async with http.post(f"{args['control']}/disrupt", params={"room": args["room"]}) as resp:
            resp.raise_for_status()
        result["disrupted_at"] = time.monotonic()
        if args["restore_on_reconnecting"]:
            result["reconnecting_at"] = await _until(
                lambda: any(e == "reconnecting" for _, _, e in events),
                args["deadline_s"],
                "a failure detected",
            )
            async with http.post(f"{args['control']}/restore", params={"room": args["room"]}) as resp:
                resp.raise_for_status()
            result["restored_at"] = time.monotonic()

    def reconnected() -> bool:
        """Every SDK that reported reconnecting has reported reconnected since (and one did)."""
        last: dict[str, str] = {}
        for _, name, event in events:
            last[name] = event
        return bool(last) and all(e == "reconnected" for e in last.values())

    disrupted = result["disrupt_at"]
    try:
        result["reconnected_at"] = await _until(reconnected, args["deadline_s"], "reconnected")
        await _until(
            lambda: audible_since(result["reconnected_at"], args["after_s"]),
            args["deadline_s"],
            "audio after",
        )
        result["complete"] = True
    except TimeoutError as exc:
        result["complete"] = False
        result["error"] = str(exc)
    result["frames"] = [(round(t - disrupted, 4), peak) for t, peak in frames]
    result["events"] = [(round(t - disrupted, 4), name, event) for t, name, event in events]
    result["sids"] = {n: r.local_participant.sid for n, r in rooms.items()}
    for key in ("disrupted_at", "reconnecting_at", "restored_at", "reconnected_at"):
        if key in result:
            result[key] = round(result[key] - disrupted, 4)
    result["disrupt_at"] = 0.0
    stop.set()
    await tone
    for listener in listeners:
        listener.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    for room in rooms.values():
        await room.disconnect()
    return result


def main() -> None:
    result = asyncio.run(run(json.loads(sys.argv[1])))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
