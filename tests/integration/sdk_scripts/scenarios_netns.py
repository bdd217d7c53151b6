"""Scenarios for tests that run one side inside a network namespace (parley.testing.NetNamespace).

Each side is its own process so one can run inside the namespace and the other outside:
``tone_speaker`` publishes a 440 Hz tone until ``tone_listener`` has joined and left;
``tone_listener`` hears it and reports the addresses of its selected ICE candidate pair.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit import rtc
from sdk_helpers import SAMPLE_RATE, connect, play_tone, receive_audio, track_of, wait_for


async def tone_speaker(args: dict[str, Any]) -> dict[str, Any]:
    """Publish a tone as ``speaker`` until ``listener`` (an identity) joined and left (or ``hold`` s)."""
    listener = str(args.get("listener", "listener"))
    room = await connect(args, "speaker")
    stop = asyncio.Event()
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    mic = rtc.LocalAudioTrack.create_audio_track("tone", source)
    task = asyncio.create_task(play_tone(source, stop))
    await room.local_participant.publish_track(
        mic, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    seen = asyncio.Event()
    left = asyncio.Event()
    if listener in room.remote_participants:
        seen.set()
    room.on("participant_connected", lambda p: seen.set() if p.identity == listener else None)
    room.on("participant_disconnected", lambda p: left.set() if p.identity == listener else None)
    try:
        await asyncio.wait_for(left.wait(), float(args.get("hold", 45)))
    except TimeoutError:
        pass
    stop.set()
    await task
    await room.disconnect()
    return {"listener_seen": seen.is_set(), "listener_left": left.is_set()}


async def tone_listener(args: dict[str, Any]) -> dict[str, Any]:
    """Hear ``speaker`` for ``seconds`` (default 1) and report the tone and the ICE path used."""
    room = await connect(args, "listener")
    track = await wait_for(lambda: track_of(room, "speaker", rtc.TrackKind.KIND_AUDIO), 20, "the tone")
    frequency = await asyncio.wait_for(receive_audio(track, float(args.get("seconds", 1.0))), 30)
    pair = await selected_pair(room)
    await room.disconnect()
    return {"frequency": frequency, "local_address": pair[0], "remote_address": pair[1]}


async def selected_pair(room: rtc.Room) -> tuple[str, str]:
    """(local, remote) address of the nominated candidate pair of the subscriber connection."""
    stats = await room.get_rtc_stats()
    entries = list(stats.subscriber_stats) or list(stats.publisher_stats)
    addresses: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for entry in entries:
        kind = entry.WhichOneof("stats")
        if kind in ("local_candidate", "remote_candidate"):
            candidate = getattr(entry, kind)
            addresses[candidate.rtc.id] = candidate.candidate.address
        elif kind == "candidate_pair" and entry.candidate_pair.candidate_pair.nominated:
            p = entry.candidate_pair.candidate_pair
            pairs.append((p.local_candidate_id, p.remote_candidate_id))
    if not pairs:
        return ("", "")
    local, remote = pairs[0]
    return (addresses.get(local, ""), addresses.get(remote, ""))


SCENARIOS = {"tone_speaker": tone_speaker, "tone_listener": tone_listener}
