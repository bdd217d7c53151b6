"""Room state that never lies: kill a process under official-SDK load, bring it back, and compare
room-state with the sessions really connected.

- room-state or Valkey down while participants leave: the SFU retries its reports until they land
  (in order, applied once), so ListParticipants drops them and each gets one ``participant_left``.
- a single Valkey restarted while a join and a CreateRoom are made: both wait and succeed late.
- an edge SIGKILLed: the SFU's edge probes notice, its participants wait ``sfu.resume_window`` and
  leave with SIGNAL_CLOSE.
- an SFU SIGKILLed, a join in the seconds before node loss: the join is rolled back
  (``participant_connection_aborted``, JOIN_FAILURE) within ``room_state.join_check_delay`` + a probe.
- an SFU restarted under the same node id (no node loss): its sessions report shows it holds none of
  the old participants; they leave with STATE_MISMATCH after ``room_state.reconcile_grace``.

Each test checks the event stream (what webhooks deliver): per session (sid), at most one
``participant_joined`` and exactly one ``participant_left`` once it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from livekit import api, rtc
from livekit.protocol import models
from livekit.protocol import room as lk

from parley.auth import Claims, VideoGrant, create_token
from parley.bus import Delivery, NatsBus, connect, rpcs, subjects
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.testing import Stack, load_script, poll_until

pytestmark = pytest.mark.integration

sources = load_script(Path(__file__).with_name("sdk_sources.py"), "sdk_sources")

SERVICES = ["room-state", "sfu", "signaling"]
CONFIG = {
    "room_state": {"node_ttl": 10.0, "reconcile_grace": 3.0, "join_check_delay": 1.0},
    "sfu": {
        "stats_interval": 0.5,
        "sessions_interval": 1.0,
        "edge_check_interval": 0.5,
        "resume_window": 3.0,
        "report_retry_max": 0.5,
    },
}
RECOVER_WITHIN_S = 10.0
"""After the killed process is back, ListParticipants matches the connected sessions within this."""
EDGE_LOSS_WITHIN_S = 3 * 0.5 + 2 * 0.5 + 3.0 + 4.0
"""Edge probes (interval, two misses, probe timeouts) + resume_window + report/relay slack."""
ROLLBACK_WITHIN_MS = 1000 + 2000 + 1000
"""join_check_delay + the probe + slack: a ghost join's participant_connected -> aborted."""
RECONCILE_WITHIN_S = 0.5 + 1.0 + 3.0 + 1.0 + 4.0
"""Restart heartbeats + sessions_interval + reconcile_grace (from the join) + report + slack."""
Reason = models.DisconnectReason
State = models.ParticipantInfo.State


@dataclass
class Peer:
    identity: str
    room: rtc.Room
    sid: str = ""
    pump: asyncio.Task[None] | None = None

    async def leave(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.room.disconnect(), 20)


@dataclass
class Events:
    seen: list[pb.RoomEvent] = field(default_factory=list)

    def story(self, sid: str) -> list[tuple[str, int]]:
        kinds = ("participant_joined", "participant_left", "participant_connection_aborted")
        return [
            (e.event, int(e.participant.disconnect_reason))
            for e in self.seen
            if e.event in kinds and e.participant.sid == sid
        ]

    def sids(self, identity: str) -> list[str]:
        out: list[str] = []
        for e in self.seen:
            if e.event == "participant_connected" and e.participant.identity == identity:
                out.append(e.participant.sid)
        return out

    def first(self, event: str, sid: str) -> pb.RoomEvent | None:
        return next((e for e in self.seen if e.event == event and e.participant.sid == sid), None)


def _first_of(events: Events, event: str, sid: str) -> Callable[[], pb.RoomEvent | None]:
    return lambda: events.first(event, sid)


async def _events(bus: NatsBus, room: str) -> Events:
    events = Events()

    async def on_event(d: Delivery) -> None:
        event = pb.RoomEvent.FromString(d.data)
        if event.room.name == room:
            events.seen.append(event)
        await d.ack()

    bus.consume(subjects.EVENTS_STREAM, f"truth-{room}", on_event, filter_subject=subjects.ROOM_EVENTS_ALL)
    return events


async def _listed(bus: NatsBus, room: str) -> dict[str, models.ParticipantInfo] | None:
    try:
        resp = await bus.call(rpcs.LIST_PARTICIPANTS, lk.ListParticipantsRequest(room=room), timeout=2)
    except Exception:
        return None
    return {p.identity: p for p in resp.participants}


async def _listed_is(bus: NatsBus, room: str, identities: set[str], *, active: bool = True) -> bool:
    listed = await _listed(bus, room)
    if listed is None or set(listed) != identities:
        return False
    return not active or all(p.state == State.ACTIVE for p in listed.values())


async def _join(stack: Stack, url: str, room: str, identity: str, *, publish: bool) -> Peer:
    token = create_token(
        stack.api_key,
        stack.api_secret,
        Claims(identity=identity, name=identity, video=VideoGrant(room_join=True, room=room)),
    )
    peer = Peer(identity, rtc.Room())
    try:
        await peer.room.connect(url, token)
    except BaseException:
        await peer.leave()  # a failed connect leaves the SDK's tasks running otherwise
        raise
    peer.sid = peer.room.local_participant.sid
    if publish:
        source = rtc.AudioSource(48000, 1)
        peer.pump = asyncio.create_task(sources.tone(source))
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await peer.room.local_participant.publish_track(track, opts)
    return peer


def _assert_one_story(events: Events, sid: str, *, left: int | None) -> None:
    story = events.story(sid)
    if left is None:
        assert story == [("participant_joined", 0)], (sid, story)
    else:
        assert story == [("participant_joined", 0), ("participant_left", left)], (sid, story)


async def _wait_story(events: Events, sid: str, left: int | None) -> None:
    def told() -> bool:
        _assert_one_story(events, sid, left=left)  # the story so far is the failure's detail
        return True

    await poll_until(told, timeout=15, interval=0.2, message=f"the story of {sid}")


async def _stack_and_bus(make_stack: Callable[..., Stack], **kw: object) -> tuple[Stack, NatsBus]:
    stack = make_stack(services=SERVICES, config=CONFIG, **kw)
    assert stack.nats is not None
    return stack, await connect(stack.nats.url, "test-state-truth")


@pytest.mark.parametrize("down", ["room-state", "valkey"])
async def test_leaves_during_a_room_state_outage_land_once(
    make_stack: Callable[..., Stack], down: str
) -> None:
    stack, bus = await _stack_and_bus(make_stack)
    room = f"truth-{uuid.uuid4().hex[:8]}"
    events = await _events(bus, room)
    peers = [await _join(stack, stack.ws_url, room, f"p{i}", publish=i < 2) for i in range(4)]
    try:
        await poll_until(lambda: _listed_is(bus, room, {p.identity for p in peers}), timeout=20)
        stay, go = peers[:2], peers[2:]
        if down == "room-state":
            stack.kill("room-state")
        else:
            assert stack.valkey is not None
            stack.valkey.stop()
        for peer in go:
            await peer.leave()
        await poll_until(
            lambda: stack.log("sfu").count("room-state update failed; retrying") >= 1,
            timeout=15,
            message="the SFU's leave reports fail while room-state is down",
        )
        if down == "room-state":
            stack.restart("room-state")
        else:
            assert stack.valkey is not None
            stack.valkey.start()
        back = time.monotonic()
        await poll_until(
            lambda: _listed_is(bus, room, {p.identity for p in stay}),
            timeout=RECOVER_WITHIN_S,
            message="ListParticipants matches the connected sessions",
        )
        print(f"{down}: ListParticipants true {time.monotonic() - back:.2f}s after the restart")
        for peer in go:
            await _wait_story(events, peer.sid, Reason.CLIENT_INITIATED)
        for peer in stay:
            await _wait_story(events, peer.sid, None)
        for peer in stay:
            await peer.leave()
        for peer in stay:
            await _wait_story(events, peer.sid, Reason.CLIENT_INITIATED)
    finally:
        for peer in peers:
            await peer.leave()
        await bus.aclose()


VALKEY_OUTAGE_S = 3.0
"""How long the single Valkey server stays down while a join and a RoomService call are made."""


async def test_a_join_and_an_api_call_during_a_valkey_restart_succeed_late(
    make_stack: Callable[..., Stack],
) -> None:
    """A single Valkey (no Sentinel) restarted: a join and a CreateRoom made while it is down wait for
    it (room-state's Redis retry, ``redis.failover_wait``) and succeed once it is back, not fail."""
    stack, bus = await _stack_and_bus(make_stack)
    room = f"truth-{uuid.uuid4().hex[:8]}"
    early = await _join(stack, stack.ws_url, room, "early", publish=False)
    client = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    late: Peer | None = None
    try:
        assert stack.valkey is not None
        stack.valkey.stop()
        joining = asyncio.create_task(_join(stack, stack.ws_url, room, "late", publish=False))
        creating = asyncio.create_task(client.room.create_room(api.CreateRoomRequest(name=f"{room}-b")))
        await asyncio.sleep(VALKEY_OUTAGE_S)
        for task in (joining, creating):
            if task.done():
                task.result()  # a failure during the outage fails the test here
        assert not joining.done(), "the join completed while Valkey was down"
        stack.valkey.start()
        back = time.monotonic()
        late = await asyncio.wait_for(joining, 30)
        created = await asyncio.wait_for(creating, 30)
        print(f"join and CreateRoom answered {time.monotonic() - back:.2f}s after Valkey was back")
        assert created.name == f"{room}-b"
        await poll_until(lambda: _listed_is(bus, room, {"early", "late"}), timeout=RECOVER_WITHIN_S)
    finally:
        for peer in (early, late):
            if peer is not None:
                await peer.leave()
        await client.aclose()
        await bus.aclose()


async def test_participants_of_a_killed_edge_leave_after_the_resume_window(
    make_stack: Callable[..., Stack],
) -> None:
    stack, bus = await _stack_and_bus(make_stack, instances={"signaling": 2})
    room = f"truth-{uuid.uuid4().hex[:8]}"
    events = await _events(bus, room)
    edge1 = f"ws://127.0.0.1:{stack.edge(1).port}"
    peers = [
        await _join(stack, stack.ws_url if i < 2 else edge1, room, f"p{i}", publish=i % 2 == 0)
        for i in range(4)
    ]
    try:
        await poll_until(lambda: _listed_is(bus, room, {p.identity for p in peers}), timeout=20)
        stay, orphaned = peers[:2], peers[2:]
        stack.kill("signaling", 1)
        killed = time.monotonic()
        for peer in orphaned:  # its SDK cannot reach an edge again; it gives up
            await peer.leave()
        await poll_until(
            lambda: _listed_is(bus, room, {p.identity for p in stay}),
            timeout=EDGE_LOSS_WITHIN_S,
            message="the dead edge's participants leave",
        )
        print(f"edge kill: ListParticipants true {time.monotonic() - killed:.2f}s after the kill")
        assert "edge gone" in stack.log("sfu")
        for peer in orphaned:
            await _wait_story(events, peer.sid, Reason.SIGNAL_CLOSE)
        for peer in stay:
            await _wait_story(events, peer.sid, None)
    finally:
        for peer in peers:
            await peer.leave()
        await bus.aclose()


async def test_a_join_while_the_sfu_is_dead_is_rolled_back(make_stack: Callable[..., Stack]) -> None:
    stack, bus = await _stack_and_bus(make_stack)
    room = f"truth-{uuid.uuid4().hex[:8]}"
    events = await _events(bus, room)
    peers = [await _join(stack, stack.ws_url, room, f"p{i}", publish=i == 0) for i in range(2)]
    late: Peer | None = None
    try:
        await poll_until(lambda: _listed_is(bus, room, {"p0", "p1"}), timeout=20)
        stack.kill("sfu")
        killed = time.monotonic()
        # no timeout around the connect: cancelling the SDK mid-connect can leave its tasks hanging;
        # the SDK gives up by itself after its retries
        with pytest.raises(Exception):  # noqa: B017 - the SDK's connect error type varies by version
            late = await _join(stack, stack.ws_url, room, "late", publish=False)

        async def settled() -> list[str] | None:
            listed = await _listed(bus, room)
            sids = events.sids("late")
            if listed is None or "late" in listed or not sids:
                return None
            done = all(events.first("participant_connection_aborted", sid) for sid in sids)
            return sids if done else None

        # every JoinRoom the SDK's retries made is committed, then rolled back (or replaced)
        ghosts = await poll_until(settled, timeout=15, message="the late joins are rolled back")
        assert ghosts is not None
        for sid in ghosts:
            aborted = await poll_until(_first_of(events, "participant_connection_aborted", sid), timeout=10)
            connected = events.first("participant_connected", sid)
            assert aborted is not None and connected is not None
            assert aborted.participant.disconnect_reason in (Reason.JOIN_FAILURE, Reason.DUPLICATE_IDENTITY)
            assert aborted.created_at_ms - connected.created_at_ms <= ROLLBACK_WITHIN_MS, aborted
            assert events.first("participant_joined", sid) is None
        assert any(
            events.first("participant_connection_aborted", sid).participant.disconnect_reason  # type: ignore[union-attr]
            == Reason.JOIN_FAILURE
            for sid in ghosts
        )
        listed = await _listed(bus, room)
        assert listed is not None and "late" not in listed, "a ghost is listed"
        print(f"sfu kill: late join rolled back; checked {time.monotonic() - killed:.2f}s after the kill")

        # the node comes back (a new process, a new node id): node loss moves the room, the SDKs rejoin
        stack.restart("sfu")

        async def rejoined() -> bool:
            return len(events.sids("p0")) >= 2 and await _listed_is(bus, room, {"p0", "p1"})

        await poll_until(
            rejoined,
            timeout=10.0 + 20.0,
            message="the SDKs rejoined on the restarted node",
        )
        for peer in peers:
            first, *_ = events.sids(peer.identity)
            await _wait_story(events, first, Reason.MIGRATION)
    finally:
        for peer in peers:
            await peer.leave()
        if late is not None:
            await late.leave()
        await bus.aclose()


async def test_sessions_lost_without_node_loss_are_reconciled(make_stack: Callable[..., Stack]) -> None:
    stack, bus = await _stack_and_bus(make_stack, instance_overrides={"sfu": [["node_id=SFU_truth"]]})
    room = f"truth-{uuid.uuid4().hex[:8]}"
    events = await _events(bus, room)
    peers = [await _join(stack, stack.ws_url, room, f"p{i}", publish=i == 0) for i in range(3)]
    fresh: Peer | None = None
    try:
        await poll_until(lambda: _listed_is(bus, room, {"p0", "p1", "p2"}), timeout=20)
        stack.kill("sfu")
        for peer in peers:  # their leaves reach no node
            await peer.leave()
        stack.restart("sfu")  # the same node id, back before room_state.node_ttl: no node loss
        back = time.monotonic()
        fresh = await _join(stack, stack.ws_url, room, "fresh", publish=True)
        await poll_until(
            lambda: _listed_is(bus, room, {"fresh"}),
            timeout=RECONCILE_WITHIN_S,
            message="the sessions the node lost are removed; the fresh one stays",
        )
        print(f"same-id restart: ListParticipants true {time.monotonic() - back:.2f}s after the restart")
        assert "participant removed: its node holds no session for it" in stack.log("room-state")
        for peer in peers:
            await _wait_story(events, peer.sid, Reason.STATE_MISMATCH)
        await _wait_story(events, fresh.sid, None)
        assert "node lost" not in stack.log("room-state")
    finally:
        for peer in peers:
            await peer.leave()
        if fresh is not None:
            await fresh.leave()
        await bus.aclose()
