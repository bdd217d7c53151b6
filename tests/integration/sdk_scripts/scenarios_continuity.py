"""Continuity scenarios: sessions that survive a signalling drop (resume).

Run through scenarios.py like the others; official SDK and numpy only. ``args["proxy"]`` is the
control URL of a ``parley.testing.TcpProxy`` between the clients and the edge (``args["url"]`` goes
through it); the scenario cuts the connections itself at the moment it chooses.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from livekit import rtc
from sdk_helpers import SAMPLE_RATE, connect, play_tone, receive_audio, track_of, wait_for


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
    at_bob = await wait_for(lambda: track_of(bob, "alice", rtc.TrackKind.KIND_AUDIO), 20, "alice at bob")
    at_alice = await wait_for(lambda: track_of(alice, "bob", rtc.TrackKind.KIND_AUDIO), 20, "bob at alice")
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
    await alice.local_participant.publish_data(b"during-gap", reliable=True, topic="gap")
    await wait_for(lambda: all("reconnected" in e for e in events.values()), 45, "both reconnected")
    resumed_after = round(time.monotonic() - cut_at, 2)
    await alice.local_participant.publish_data(b"after", reliable=True, topic="gap")
    await wait_for(lambda: "after" in received, 15, "data after the resume")
    after = {
        "freq_at_bob": await asyncio.wait_for(receive_audio(at_bob, 1.0), 20),
        "freq_at_alice": await asyncio.wait_for(receive_audio(at_alice, 1.0), 20),
    }
    result = {
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
    await asyncio.gather(*tasks)
    for room in rooms.values():
        await room.disconnect()
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


SCENARIOS = {"signal_cut": signal_cut, "ice_break": ice_break}
