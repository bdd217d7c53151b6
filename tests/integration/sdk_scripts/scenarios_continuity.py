"""Continuity scenarios: sessions that survive a signalling drop (resume).

Run through scenarios.py like the others; official SDK and numpy only. ``args["proxy"]`` is the
control URL of a ``parley.testing.TcpProxy`` between the clients and the edge (``args["url"]`` goes
through it); the scenario cuts the connections itself at the moment it chooses.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp
import numpy as np
from livekit import rtc
from sdk_helpers import (
    HEIGHT,
    SAMPLE_RATE,
    WIDTH,
    connect,
    play_tone,
    play_video,
    receive_audio,
    step,
    track_of,
    wait_for,
)


async def signal_cut(args: dict[str, Any]) -> dict[str, Any]:
    """Alice (440 Hz) and Bob (880 Hz) hear each other; every signalling connection is cut and new
    ones are refused for ``args["gap"]`` seconds. Both SDKs must report reconnecting -> reconnected
    (never disconnected), keep their sids, keep hearing each other, and reliable data Alice sends
    during the gap reaches Bob."""
    events: dict[str, list[str]] = {"alice": [], "bob": []}
    rooms: dict[str, rtc.Room] = {}
    for name in ("alice", "bob"):
        room = await connect(args, name)
        rooms[name] = room
        for event in ("reconnecting", "reconnected", "disconnected"):
            room.on(event, lambda *_, name=name, event=event: events[name].append(event))
    alice, bob = rooms["alice"], rooms["bob"]
    received: list[str] = []
    bob.on("data_received", lambda packet: received.append(packet.data.decode()))
    stop = asyncio.Event()
    tasks = []
    pubs = {}
    for name, hz in (("alice", 440.0), ("bob", 880.0)):
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        tasks.append(asyncio.create_task(play_tone(source, stop, hz)))
        track = rtc.LocalAudioTrack.create_audio_track(f"{name}-mic", source)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        pubs[name] = (await rooms[name].local_participant.publish_track(track, opts)).sid
        step(f"{name} published {pubs[name]}")
    camera = rtc.VideoSource(WIDTH, HEIGHT)
    tasks.append(asyncio.create_task(play_video(camera, stop)))
    cam = rtc.LocalVideoTrack.create_video_track("alice-cam", camera)
    cam_opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False)
    pubs["alice_cam"] = (await alice.local_participant.publish_track(cam, cam_opts)).sid
    at_bob = await wait_for(lambda: track_of(bob, "alice", rtc.TrackKind.KIND_AUDIO), 20, "alice at bob")
    at_alice = await wait_for(lambda: track_of(alice, "bob", rtc.TrackKind.KIND_AUDIO), 20, "bob at alice")
    video_at_bob = await wait_for(
        lambda: track_of(bob, "alice", rtc.TrackKind.KIND_VIDEO), 20, "video at bob"
    )
    frames: list[float] = []

    async def count_frames() -> None:
        async for _ in rtc.VideoStream(video_at_bob):
            frames.append(time.monotonic())

    tasks.append(asyncio.create_task(count_frames()))
    step("listening before the cut")
    before = {
        "freq_at_bob": await asyncio.wait_for(receive_audio(at_bob, 1.0), 20),
        "freq_at_alice": await asyncio.wait_for(receive_audio(at_alice, 1.0), 20),
    }
    sids_before = {n: r.local_participant.sid for n, r in rooms.items()}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{args['proxy']}/cut?refuse={args['gap']}") as resp,
    ):
        dropped = (await resp.json())["dropped"]
    cut_at = time.monotonic()
    step(f"cut {dropped} connections")
    await alice.local_participant.publish_data(b"during-gap", reliable=True, topic="gap")
    await wait_for(lambda: all("reconnected" in e for e in events.values()), 45, "both reconnected")
    resumed_after = round(time.monotonic() - cut_at, 2)
    await alice.local_participant.publish_data(b"after", reliable=True, topic="gap")
    await wait_for(lambda: "after" in received, 15, "data after the resume")
    step("listening after the resume")
    after = {
        "freq_at_bob": await asyncio.wait_for(receive_audio(at_bob, 1.0), 20),
        "freq_at_alice": await asyncio.wait_for(receive_audio(at_alice, 1.0), 20),
    }
    await wait_for(lambda: sum(1 for t in frames if t > cut_at) >= 20, 20, "video frames after the cut")
    result = {
        "video_frames_before_cut": sum(1 for t in frames if t <= cut_at),
        "video_frames_after_cut": sum(1 for t in frames if t > cut_at),
        "dropped": dropped,
        "events": {n: list(e) for n, e in events.items()},
        "sids_before": sids_before,
        "sids_after": {n: r.local_participant.sid for n, r in rooms.items()},
        "publications": {
            "alice_at_bob": list(bob.remote_participants["alice"].track_publications),
            "bob_at_alice": list(alice.remote_participants["bob"].track_publications),
        },
        "published": pubs,
        "remote_sids": {
            "alice_at_bob": bob.remote_participants["alice"].sid,
            "bob_at_alice": alice.remote_participants["bob"].sid,
        },
        "received": received,
        "before": before,
        "after": after,
        "resumed_after_s": resumed_after,
    }
    stop.set()
    tasks[-1].cancel()  # the frame counter
    await asyncio.gather(*tasks, return_exceptions=True)
    for name, room in rooms.items():
        step(f"{name} disconnects")
        await room.disconnect()
    step("done")
    return result


async def ice_break(args: dict[str, Any]) -> dict[str, Any]:
    """Alice and Bob (this process, inside a network namespace) hear each other; the test blocks the
    namespace's UDP when asked (``args["control"]/block``) and unblocks it once an SDK reports
    ``reconnecting`` (it saw its media path fail). Media must come back through an ICE restart on the
    same session: reconnected, never disconnected, same sids."""
    events: dict[str, list[str]] = {"alice": [], "bob": []}
    rooms: dict[str, rtc.Room] = {}
    for name in ("alice", "bob"):
        room = await connect(args, name)
        rooms[name] = room
        for event in ("reconnecting", "reconnected", "disconnected"):
            room.on(event, lambda *_, name=name, event=event: events[name].append(event))
    alice, bob = rooms["alice"], rooms["bob"]
    stop = asyncio.Event()
    tasks = []
    for name, hz in (("alice", 440.0), ("bob", 880.0)):
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        tasks.append(asyncio.create_task(play_tone(source, stop, hz)))
        track = rtc.LocalAudioTrack.create_audio_track(f"{name}-mic", source)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await rooms[name].local_participant.publish_track(track, opts)
    at_bob = await wait_for(lambda: track_of(bob, "alice", rtc.TrackKind.KIND_AUDIO), 20, "alice at bob")
    at_alice = await wait_for(lambda: track_of(alice, "bob", rtc.TrackKind.KIND_AUDIO), 20, "bob at alice")
    await asyncio.wait_for(receive_audio(at_bob, 0.5), 20)
    sids_before = {n: r.local_participant.sid for n, r in rooms.items()}
    async with aiohttp.ClientSession() as http:
        await (await http.post(f"{args['control']}/block")).release()
        blocked_at = time.monotonic()
        await wait_for(lambda: any("reconnecting" in e for e in events.values()), 90, "a failure detected")
        detected_after = round(time.monotonic() - blocked_at, 2)
        await (await http.post(f"{args['control']}/unblock")).release()
    unblocked_at = time.monotonic()
    await wait_for(
        lambda: all(not e or e[-1] == "reconnected" for e in events.values()),
        60,
        "reconnected after the unblock",
    )
    restored_after = round(time.monotonic() - unblocked_at, 2)
    after = {
        "freq_at_bob": await asyncio.wait_for(receive_audio(at_bob, 1.0), 30),
        "freq_at_alice": await asyncio.wait_for(receive_audio(at_alice, 1.0), 30),
    }
    result = {
        "events": {n: list(e) for n, e in events.items()},
        "sids_before": sids_before,
        "sids_after": {n: r.local_participant.sid for n, r in rooms.items()},
        "after": after,
        "detected_after_s": detected_after,
        "restored_after_s": restored_after,
    }
    stop.set()
    await asyncio.gather(*tasks)
    for room in rooms.values():
        await room.disconnect()
    return result


async def node_change(args: dict[str, Any]) -> dict[str, Any]:
    """Alice (440 Hz, ``url``) and Bob (880 Hz, ``url_b``) hear each other; then the test disrupts the
    SFU node hosting the room (``args["control"]/disrupt``: SIGKILL or SIGTERM). Both must hear each
    other again on another node, with the same identities, reporting reconnecting/reconnected and
    never disconnected. Records the audio gap each receiver saw."""
    events: dict[str, list[str]] = {"alice": [], "bob": []}
    heard: dict[str, list[float]] = {"alice": [], "bob": []}
    """receiver -> monotonic times of audible frames from the other one"""
    readers: list[asyncio.Task[None]] = []

    async def read(track: rtc.Track, into: list[float]) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        async for event in stream:
            samples = np.frombuffer(bytes(event.frame.data), dtype=np.int16)
            if samples.size and int(np.abs(samples).max()) > 1000:
                into.append(time.monotonic())

    rooms: dict[str, rtc.Room] = {}
    for name, url_key in (("alice", "url"), ("bob", "url_b")):
        room = await connect(args, name, url_key=url_key)
        rooms[name] = room
        for event in ("reconnecting", "reconnected", "disconnected"):
            room.on(event, lambda *_, name=name, event=event: events[name].append(event))
        room.on(
            "track_subscribed",
            lambda track, *_, name=name: (
                readers.append(asyncio.create_task(read(track, heard[name])))
                if track.kind == rtc.TrackKind.KIND_AUDIO
                else None
            ),
        )
    stop = asyncio.Event()
    tasks = []
    for name, hz in (("alice", 440.0), ("bob", 880.0)):
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        tasks.append(asyncio.create_task(play_tone(source, stop, hz)))
        track = rtc.LocalAudioTrack.create_audio_track(f"{name}-mic", source)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await rooms[name].local_participant.publish_track(track, opts)
    await wait_for(lambda: all(len(h) > 50 for h in heard.values()), 30, "both hear each other")
    if args.get("agent"):
        agent_kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        await wait_for(
            lambda: any(p.kind == agent_kind for p in rooms["alice"].remote_participants.values()),
            60,
            "agent",
        )
    async with aiohttp.ClientSession() as http:
        await (await http.post(f"{args['control']}/disrupt")).release()
    disrupted = time.monotonic()

    def back() -> bool:
        return all(sum(1 for t in h if t > disrupted + 0.5) > 50 for h in heard.values())

    await wait_for(back, float(args.get("within", 45)), "both hear each other again")
    again = {
        name: round(next(t for t in h if t > disrupted + 0.5) - disrupted, 2) for name, h in heard.items()
    }
    gaps = {}
    for name, times in heard.items():
        window = [t for t in times if t > disrupted - 2.0]
        gaps[name] = round(max(b - a for a, b in itertools.pairwise(window)), 3)
    at_bob = await wait_for(lambda: track_of(rooms["bob"], "alice", rtc.TrackKind.KIND_AUDIO), 10, "alice")
    at_alice = await wait_for(lambda: track_of(rooms["alice"], "bob", rtc.TrackKind.KIND_AUDIO), 10, "bob")
    async with aiohttp.ClientSession() as http, http.post(f"{args['control']}/listed") as resp:
        listed = await resp.json()
    result = {
        "listed": listed,
        "events": {n: list(e) for n, e in events.items()},
        "heard_again_after_s": again,
        "gap_s": gaps,
        "freq_at_bob": await asyncio.wait_for(receive_audio(at_bob, 1.0), 20),
        "freq_at_alice": await asyncio.wait_for(receive_audio(at_alice, 1.0), 20),
        "remote_identities": {
            n: sorted(p.identity for p in r.remote_participants.values()) for n, r in rooms.items()
        },
    }
    stop.set()
    await asyncio.gather(*tasks)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for room in rooms.values():
        await room.disconnect()
    return result


SCENARIOS = {"signal_cut": signal_cut, "ice_break": ice_break, "node_change": node_change}
