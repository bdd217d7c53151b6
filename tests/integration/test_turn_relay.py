"""End to end through coturn: two official Python SDK participants exchange audio over relay only.

alice asks for relay-only ICE herself (``IceTransportType.TRANSPORT_RELAY``); bob gets it from the
server (``turn.force_relay`` → JoinResponse ``client_configuration.force_relay``). Both get their
TURN credentials from turn-alloc in JoinResponse ``ice_servers``; the selected candidate pair of
every transport must be a relay candidate on coturn, and coturn must have allocated for both.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from livekit import api, rtc
from livekit.rtc._proto import stats_pb2

from parley.devprocs.coturn import Coturn
from parley.testing import Stack, poll_until

pytestmark = [pytest.mark.integration, pytest.mark.sdk]

SECRET = "coturn-shared-secret-for-tests-0123"
ROOM = "relay-room"
SAMPLE_RATE = 48000
FRAME = SAMPLE_RATE // 100  # 10 ms


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    server = Coturn(SECRET, log_path=tmp_path / "coturn.log")
    server.start()
    yield server
    server.close()


def token(stack: Stack, identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room=ROOM)
    return (
        api.AccessToken(stack.api_key, stack.api_secret).with_identity(identity).with_grants(grants).to_jwt()
    )


def selected_pairs(
    stats: list[stats_pb2.RtcStats],
) -> list[tuple[stats_pb2.IceCandidateStats, stats_pb2.IceCandidateStats]]:
    """(local, remote) candidates of the selected pair of each transport in a stats report."""
    pairs: dict[str, stats_pb2.CandidatePairStats] = {}
    candidates: dict[str, stats_pb2.IceCandidateStats] = {}
    selected: list[str] = []
    for stat in stats:
        kind = stat.WhichOneof("stats")
        if kind == "transport" and stat.transport.transport.selected_candidate_pair_id:
            selected.append(stat.transport.transport.selected_candidate_pair_id)
        elif kind == "candidate_pair":
            pairs[stat.candidate_pair.rtc.id] = stat.candidate_pair.candidate_pair
        elif kind == "local_candidate":
            candidates[stat.local_candidate.rtc.id] = stat.local_candidate.candidate
        elif kind == "remote_candidate":
            candidates[stat.remote_candidate.rtc.id] = stat.remote_candidate.candidate
    return [
        (candidates[pairs[p].local_candidate_id], candidates[pairs[p].remote_candidate_id])
        for p in selected
        if p in pairs
    ]


async def send_tone(source: rtc.AudioSource, stop: asyncio.Event) -> None:
    t = np.arange(FRAME) / SAMPLE_RATE
    n = 0
    while not stop.is_set():
        samples = (np.sin(2 * math.pi * 440 * (t + n * FRAME / SAMPLE_RATE)) * 12000).astype(np.int16)
        frame = rtc.AudioFrame(samples.tobytes(), SAMPLE_RATE, 1, FRAME)
        await source.capture_frame(frame)
        n += 1


async def test_relay_only_participants_exchange_audio_through_coturn(
    coturn: Coturn, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(
        services=["room-state", "sfu", "turn-alloc", "signaling"],
        config={
            "turn": {
                "enabled": True,
                "secret": SECRET,
                "force_relay": True,
                "servers": [{"host": "127.0.0.1", "port": coturn.port, "transports": ["udp", "tcp"]}],
            }
        },
        # A busy 2-core machine must not make a relay-only join go without TURN servers.
        instance_overrides={"sfu": [["sfu.ice_servers_timeout=5"]]},
    )
    alice, bob = rtc.Room(), rtc.Room()
    relay_only = rtc.RoomOptions(
        rtc_config=rtc.RtcConfiguration(ice_transport_type=rtc.IceTransportType.TRANSPORT_RELAY)
    )
    received: list[float] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    async def listen(track: rtc.RemoteAudioTrack) -> None:
        async for event in rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1):
            data = np.frombuffer(event.frame.data, dtype=np.int16)
            received.append(float(np.abs(data).mean()) if len(data) else 0.0)

    @bob.on("track_subscribed")
    def on_track(track: rtc.Track, *_: object) -> None:
        if isinstance(track, rtc.RemoteAudioTrack):
            tasks.append(asyncio.ensure_future(listen(track)))

    try:
        await alice.connect(stack.ws_url, token(stack, "alice"), relay_only)
        await bob.connect(stack.ws_url, token(stack, "bob"))  # relay only because the server says so
        source = rtc.AudioSource(SAMPLE_RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("tone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await alice.local_participant.publish_track(track, options)
        tasks.append(asyncio.ensure_future(send_tone(source, stop)))

        await poll_until(
            lambda: sum(1 for level in received if level > 500) >= 50,
            timeout=45,
            interval=0.2,
            message="bob hearing alice's tone (50 loud 10 ms frames)",
        )

        for name, room in (("alice", alice), ("bob", bob)):
            stats = await room.get_rtc_stats()
            pairs = selected_pairs([*stats.publisher_stats, *stats.subscriber_stats])
            assert pairs, f"{name}: no selected candidate pair"
            for local, remote in pairs:
                assert local.candidate_type == stats_pb2.RELAY, f"{name}: {local}"
                assert local.address == "127.0.0.1" and local.port != coturn.port, f"{name}: {local}"
                assert local.url.startswith(f"turn:127.0.0.1:{coturn.port}"), f"{name}: {local.url}"
                assert remote.address == "127.0.0.1", f"{name}: {remote}"

        log = coturn.log_text()
        for name, room in (("alice", alice), ("bob", bob)):
            sid = room.local_participant.sid
            allocated = rf"user <\d+:{re.escape(sid)}>: incoming packet ALLOCATE processed, success"
            assert re.search(allocated, log), f"coturn allocated nothing for {name} ({sid})"
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await alice.disconnect()
        await bob.disconnect()
