"""One writer per record (issue 14): room-state alone versions participant and track records.

An official SDK publisher (``sdk_scripts/scenarios_records.py``) is muted by MutePublishedTrack and
updated by UpdateParticipant, each twice, then unmutes and sets its own metadata, twice too. room-state
emits exactly one event per real change and none for a repeat; a raw signalling client in the room
sees every update of alice with a version never lower than the last, and the version room-state wrote
for each RoomService change (the node adopts it rather than counting its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from livekit.protocol import models, rtc

from parley.auth import Claims, VideoGrant, create_token
from parley.bus import Delivery, connect, subjects
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.testing import Stack, load_script, poll_until

pytestmark = pytest.mark.integration

runner = load_script(Path(__file__).with_name("sdk_scripts") / "runner.py", "sdk_runner")

SERVICES = ["room-state", "sfu", "signaling"]
COMBOS = [("sdk-1.2", "v1"), ("sdk-1.1", "v1"), ("sdk-1.2", "v0")]
QUERY = "sdk=python&protocol=17&client_protocol=2&auto_subscribe=0"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=tmp_path_factory.mktemp("record-writes"), services=SERVICES).start()
    yield s
    s.stop()


@contextlib.asynccontextmanager
async def room_events(stack: Stack, room: str) -> AsyncIterator[list[pb.RoomEvent]]:
    """room-state's events of ``room`` as they are published (PARLEY_EVENTS)."""
    assert stack.nats is not None
    bus = await connect(stack.nats.url, "test-record-writes")
    events: list[pb.RoomEvent] = []

    async def on_event(d: Delivery) -> None:
        events.append(pb.RoomEvent.FromString(d.data))

    sub = await bus.subscribe(subjects.room_events(room), on_event)
    try:
        yield events
    finally:
        await sub.unsubscribe()
        await bus.aclose()


@contextlib.asynccontextmanager
async def watcher(stack: Stack, room: str) -> AsyncIterator[list[models.ParticipantInfo]]:
    """A raw signalling client in ``room`` (no media, no subscriptions): every ParticipantInfo the
    node sends it in ``update`` frames, in order."""
    claims = Claims(identity="watcher", video=VideoGrant(room=room, room_join=True, can_subscribe=False))
    token = create_token(stack.api_key, stack.api_secret, claims)
    seen: list[models.ParticipantInfo] = []
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            f"{stack.ws_url}/rtc?{QUERY}", headers={"Authorization": f"Bearer {token}"}, max_msg_size=0
        )

        async def read() -> None:
            pinged = 0.0
            while True:
                if time.monotonic() - pinged > 3:
                    await ws.send_bytes(rtc.SignalRequest(ping=int(time.time() * 1000)).SerializeToString())
                    pinged = time.monotonic()
                try:
                    msg = await asyncio.wait_for(ws.receive(), 1)
                except TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.BINARY:
                    return
                response = rtc.SignalResponse.FromString(msg.data)
                if response.WhichOneof("message") == "update":
                    seen.extend(response.update.participants)

        reader = asyncio.create_task(read())
        try:
            yield seen
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()


@pytest.mark.parametrize("combo", COMBOS, ids=[f"{sdk}-{path}" for sdk, path in COMBOS])
async def test_one_event_per_change_and_none_for_a_repeat(stack: Stack, combo: tuple[str, str]) -> None:
    room = f"records-{uuid.uuid4().hex[:8]}"
    async with room_events(stack, room) as events, watcher(stack, room) as updates:
        result: dict[str, Any] = await runner.run_on_path(stack, *combo, "record_writes", 2, room=room)
        # alice left after every change: the node reports in order, so her participant_left comes
        # after any event her changes (or their repeats) could have caused
        await poll_until(
            lambda: any(e.event == "participant_left" and e.participant.identity == "alice" for e in events),
            timeout=30,
            message="alice's participant_left",
        )
        await poll_until(
            lambda: any(
                p.identity == "alice" and p.state == models.ParticipantInfo.State.DISCONNECTED
                for p in updates
            ),
            timeout=10,
            message="alice's leave at the watcher",
        )
    alice = [e for e in events if e.participant.identity == "alice"]
    track_updates = [e for e in alice if e.event == "track_updated"]
    assert [(e.track.sid, e.track.muted) for e in track_updates] == [
        (result["track_sid"], True),  # MutePublishedTrack: once, not again for the node's report
        (result["track_sid"], False),  # alice's own unmute
    ], [e.event for e in alice]
    metadata_updates = [e.participant.metadata for e in alice if e.event == "participant_updated"]
    assert metadata_updates == ["from-api", "from-alice"], [e.event for e in alice]
    versions = [(e.event, e.participant.version) for e in alice]
    changes = [v for name, v in versions if name != "participant_left"]  # leaving deletes the record
    assert changes == sorted(set(changes)), versions  # every change of alice carries a newer version
    assert result["mute_responses"] == [True, True]
    u1, u2 = result["update_versions"]
    assert u1 == u2, "an UpdateParticipant that changes nothing changes no version"
    assert u1 == next(e.participant.version for e in alice if e.event == "participant_updated")
    assert result["final_metadata"] == "from-alice" and result["final_muted"] == [False]
    assert result["bob"] == {"muted": 1, "unmuted": 1, "metadata": ["from-api", "from-alice"]}, result
    # what a client sees: alice's versions never go back, and the RoomService changes carry the
    # version room-state wrote
    seen = [p for p in updates if p.identity == "alice"]
    seen_versions = [p.version for p in seen]
    assert seen_versions == sorted(seen_versions), seen_versions
    muted_at = next(p.version for p in seen if any(t.muted for t in p.tracks))
    assert muted_at == track_updates[0].participant.version, (
        seen_versions,
        track_updates[0].participant.version,
    )
    api_metadata_at = next(p.version for p in seen if p.metadata == "from-api")
    assert api_metadata_at == u1, (seen_versions, u1)
