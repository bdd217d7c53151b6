"""The webhook service against real nats-server, the official receivers (Python and Node) and faults.

Room events are produced exactly as room-state produces them: a RoomEvent published to JetStream
on ``subjects.room_events(room)`` with ``Nats-Msg-Id`` = event id.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats.js.errors
import pytest
import pytest_asyncio
from aiohttp import web
from livekit import api as lkapi
from livekit.protocol import agent as lk_agent
from livekit.protocol import models as lk_models

from parley.bus import NatsBus, connect, subjects
from parley.devprocs.processes import free_port
from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent
from parley.testing import TEST_API_KEY, TEST_API_SECRET, Stack, poll_until

pytestmark = pytest.mark.integration

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
WEBHOOK_NAMES = [
    "room_started",
    "participant_joined",
    "track_published",
    "track_unpublished",
    "agent_job_started",
    "agent_job_ended",
    "participant_left",
    "participant_connection_aborted",
    "room_finished",
]
INTERNAL_NAMES = ["room_updated", "participant_updated", "track_updated", "participant_connected"]
FAST = {"lease_ttl": 3.0, "ack_wait": 1.5}


# -- a receiving endpoint verified by the official Python WebhookReceiver --------------------------


@dataclass
class Received:
    id: str
    event: str
    room: str
    at: float
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class PyReceiver:
    """An aiohttp endpoint that can go down (port closed) and come back on the same port."""

    port: int = field(default_factory=free_port)
    events: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        receiver = lkapi.WebhookReceiver(lkapi.TokenVerifier(TEST_API_KEY, TEST_API_SECRET))
        app = web.Application()

        async def hook(request: web.Request) -> web.Response:
            text = await request.text()
            try:
                event = receiver.receive(text, request.headers.get("Authorization", ""))
            except Exception as exc:
                self.rejected.append(str(exc))
                return web.Response(status=401)
            self.events.append(
                Received(
                    event.id,
                    event.event,
                    event.room.name,
                    time.monotonic(),
                    dict(request.headers),
                    json.loads(text),
                )
            )
            return web.Response(text="ok")

        app.router.add_post("/hook", hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def ids(self) -> list[str]:
        return [e.id for e in self.events]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[PyReceiver]:
    r = PyReceiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
def node_receiver() -> Iterator[str]:
    """The Node livekit-server-sdk WebhookReceiver endpoint; yields its base URL."""
    env = dict(os.environ, API_KEY=TEST_API_KEY, API_SECRET=TEST_API_SECRET, PORT="0")
    proc = subprocess.Popen(
        ["node", str(NODE_DIR / "webhook_receiver.mjs")], cwd=NODE_DIR, env=env, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert line.startswith("listening "), f"node receiver did not start: {line!r}"
    yield f"http://127.0.0.1:{int(line.split()[1])}/"
    proc.terminate()
    proc.wait(timeout=10)


def node_events(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


# -- producing events as room-state does -----------------------------------------------------------


class Producer:
    def __init__(self, bus: NatsBus) -> None:
        self.bus = bus
        self.sequence: dict[str, int] = {}
        self.published: dict[str, list[str]] = {}
        self.count = 0

    async def emit(self, room: str, name: str, **parts: Any) -> RoomEvent:
        seq = self.sequence.get(room, 0) + 1
        self.sequence[room] = seq
        self.count += 1
        now_ms = int(time.time() * 1000)
        event = RoomEvent(
            id=f"EV_{room}_{seq}_{self.count}",
            event=name,
            created_at=now_ms // 1000,
            created_at_ms=now_ms,
            room_sequence=seq,
            room=lk_models.Room(sid=f"RM_{room}", name=room, creation_time=now_ms // 1000),
            **parts,
        )
        await self.bus.publish_durable(subjects.room_events(room), event, msg_id=event.id)
        if name in WEBHOOK_NAMES:
            self.published.setdefault(room, []).append(event.id)
        return event

    def all_ids(self) -> set[str]:
        return {i for ids in self.published.values() for i in ids}


@pytest_asyncio.fixture
async def producer(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[Stack], Any]]:
    buses: list[NatsBus] = []

    async def make(stack: Stack) -> Producer:
        assert stack.nats is not None
        bus = await connect(stack.nats.url, "test-producer")
        buses.append(bus)
        return Producer(bus)

    yield make
    for bus in buses:
        await bus.aclose()


def webhook_stack(make_stack: Callable[..., Stack], urls: list[str], **kwargs: Any) -> Stack:
    hook = {"urls": urls, **kwargs.pop("webhook", {})}
    service = {**FAST, **kwargs.pop("webhook_service", {})}
    return make_stack(services=["webhook"], config={"webhook": hook, "webhook_service": service}, **kwargs)


def in_room_order(events: list[Received], producer: Producer) -> None:
    """Per room, the first arrival of each id follows publication order, and nothing is missing."""
    for room, ids in producer.published.items():
        seen: list[str] = []
        for e in events:
            if e.room == room and e.id not in seen:
                seen.append(e.id)
        assert seen == ids, f"room {room}: got {seen}, published {ids}"


def metric(stack: Stack, name: str, index: int = 0) -> float:
    port = stack.get("webhook", index).health_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# -- tests ----------------------------------------------------------------------------------------


async def test_official_receivers_accept_every_event_type(
    make_stack: Callable[..., Stack], receiver: PyReceiver, node_receiver: str, producer: Any
) -> None:
    stack = webhook_stack(make_stack, [receiver.url, node_receiver])
    p: Producer = await producer(stack)
    participant = lk_models.ParticipantInfo(
        sid="PA_a", identity="alice", state=lk_models.ParticipantInfo.ACTIVE
    )
    track = lk_models.TrackInfo(sid="TR_a", type=lk_models.TrackType.AUDIO, name="mic")
    job = lk_agent.Job(id="AJ_a", type=lk_agent.JobType.JT_ROOM, agent_name="bot")
    parts: dict[str, dict[str, Any]] = {
        "participant_joined": {"participant": participant},
        "participant_left": {"participant": participant},
        "participant_connection_aborted": {"participant": participant},
        "track_published": {"participant": participant, "track": track},
        "track_unpublished": {"participant": participant, "track": track},
        "agent_job_started": {"job": job},
        "agent_job_ended": {"job": job},
    }
    for i, name in enumerate(WEBHOOK_NAMES):
        await p.emit("wire-room", name, **parts.get(name, {}))
        await p.emit("wire-room", INTERNAL_NAMES[i % len(INTERNAL_NAMES)])
    expected = p.published["wire-room"]

    await poll_until(lambda: len(receiver.events) >= len(expected), timeout=30, message="python receiver")
    await poll_until(
        lambda: len(node_events(node_receiver)["accepted"]) >= len(expected),
        timeout=30,
        message="node receiver",
    )
    assert receiver.rejected == []
    assert [e.event for e in receiver.events] == WEBHOOK_NAMES
    assert receiver.ids() == expected
    first = receiver.events[0]
    assert first.headers["Content-Type"] == "application/webhook+json"
    assert first.headers["User-Agent"] == "LiveKit"
    assert not first.headers["Authorization"].startswith("Bearer")
    assert first.body["id"].startswith("EV_") and int(first.body["createdAt"]) > 0
    assert (
        "numDropped" not in first.body and "created_at" not in first.body
    )  # protojson: camelCase, no defaults
    by_name = {e.event: e.body for e in receiver.events}
    assert by_name["track_published"]["track"]["sid"] == "TR_a"
    assert by_name["participant_joined"]["participant"]["identity"] == "alice"
    assert by_name["agent_job_started"]["job"]["id"] == "AJ_a"

    node = node_events(node_receiver)
    assert node["rejected"] == []
    assert [e["event"] for e in node["accepted"]] == WEBHOOK_NAMES
    assert [e["id"] for e in node["accepted"]] == expected
    assert {e["contentType"] for e in node["accepted"]} == {"application/webhook+json"}
    assert {e["room"] for e in node["accepted"]} == {"wire-room"}
    await poll_until(lambda: metric(stack, "parley_webhook_delivered") >= 2 * len(expected), message="metric")
    assert metric(stack, "parley_webhook_skipped") >= 2 * len(INTERNAL_NAMES)


async def test_endpoint_down_60s_gets_everything_in_order(
    make_stack: Callable[..., Stack], receiver: PyReceiver, producer: Any
) -> None:
    stack = webhook_stack(make_stack, [receiver.url], webhook={"backoff_min": 0.2, "backoff_max": 2.0})
    p: Producer = await producer(stack)
    await p.emit("before", "room_started")
    await poll_until(lambda: len(receiver.events) == 1, timeout=20, message="first event")

    await receiver.stop()
    outage_start = time.monotonic()
    rooms = ["r1", "r2", "r3"]
    i = 0
    while time.monotonic() - outage_start < 60:  # events keep happening during the whole outage
        room = rooms[i % len(rooms)]
        await p.emit(room, "room_started" if p.sequence.get(room, 0) == 0 else "participant_joined")
        i += 1
        await asyncio.sleep(1.5)
    assert metric(stack, "parley_webhook_retried") > 0
    await receiver.start()

    await poll_until(
        lambda: set(receiver.ids()) >= p.all_ids(), timeout=30, message="all events after outage"
    )
    in_room_order(receiver.events, p)
    assert len(receiver.ids()) == len(set(receiver.ids())), "no duplicates without a crash"
    assert metric(stack, "parley_webhook_expired") == 0


async def test_killed_mid_stream_loses_nothing(
    make_stack: Callable[..., Stack], receiver: PyReceiver, producer: Any
) -> None:
    stack = webhook_stack(make_stack, [receiver.url])
    p: Producer = await producer(stack)
    rooms = [f"k{i}" for i in range(8)]

    async def produce(n: int) -> None:
        for _ in range(n):
            for room in rooms:
                await p.emit(room, "participant_joined")
            await asyncio.sleep(0.02)

    await produce(10)
    await poll_until(lambda: len(receiver.events) >= 20, timeout=20, message="delivery under way")
    stack.kill("webhook")
    await produce(10)  # while nothing delivers
    stack.restart("webhook")
    await produce(10)

    await poll_until(
        lambda: set(receiver.ids()) >= p.all_ids(), timeout=60, message="all events after restart"
    )
    assert set(receiver.ids()) == p.all_ids()  # duplicates possible, but only of real ids
    in_room_order(receiver.events, p)


async def test_dead_endpoint_does_not_delay_healthy_one(
    make_stack: Callable[..., Stack], receiver: PyReceiver, producer: Any
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    stack = webhook_stack(make_stack, [dead, receiver.url], webhook={"backoff_min": 1.0, "backoff_max": 10.0})
    p: Producer = await producer(stack)
    latencies: list[float] = []
    for i in range(15):
        room = f"d{i % 3}"
        event_id = (await p.emit(room, "participant_joined")).id
        sent = time.monotonic()

        def delivered(i: str = event_id) -> bool:
            return i in receiver.ids()

        await poll_until(delivered, timeout=10, interval=0.01, message=event_id)
        latencies.append(next(e.at for e in receiver.events if e.id == event_id) - sent)
    assert max(latencies) < 2.0, latencies
    assert metric(stack, "parley_webhook_retried") > 0  # the dead one is being retried meanwhile


async def test_two_instances_share_without_double_delivery(
    make_stack: Callable[..., Stack], receiver: PyReceiver, producer: Any
) -> None:
    stack = webhook_stack(make_stack, [receiver.url], instances={"webhook": 2})
    p: Producer = await producer(stack)
    kv = await p.bus.key_value("PARLEY_WEBHOOK_LEASES")

    async def two_owners() -> bool:
        found: set[str] = set()
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return False  # every lease given back or expired at this instant (nats-py raises on none)
        for key in keys:
            if key.startswith("lease."):
                try:
                    entry = await kv.get(key)
                except nats.js.errors.KeyNotFoundError:
                    continue  # given back (or expired) since keys() listed it: nobody's now
                found.add((entry.value or b"").decode())
        return len(found) >= 2

    await poll_until(two_owners, timeout=30, message="both instances own partitions")
    rooms = [f"s{i}" for i in range(24)]
    for _ in range(5):
        for room in rooms:
            await p.emit(room, "participant_joined")

    await poll_until(lambda: set(receiver.ids()) >= p.all_ids(), timeout=30, message="all events")
    assert len(receiver.ids()) == len(p.all_ids()), "each event delivered exactly once"
    in_room_order(receiver.events, p)
    assert metric(stack, "parley_webhook_delivered", 0) > 0
    assert metric(stack, "parley_webhook_delivered", 1) > 0


async def test_room_api_events_reach_the_endpoint(
    make_stack: Callable[..., Stack], receiver: PyReceiver, node_receiver: str
) -> None:
    """End to end: CreateRoom/DeleteRoom via livekit-api -> room-state -> JetStream -> webhook."""
    stack = make_stack(
        services=["room-state", "sfu", "signaling", "webhook"],
        config={"webhook": {"urls": [receiver.url, node_receiver]}},  # each service refuses others' sections
    )
    client = lkapi.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    try:

        async def create() -> lk_models.Room | None:
            return await _create_room(client, "e2e-room")

        room = await poll_until(create, timeout=30, message="CreateRoom (SFU node known)")
        assert room is not None
        await poll_until(
            lambda: "room_started" in [e.event for e in receiver.events], timeout=30, message="room_started"
        )
        started = next(e for e in receiver.events if e.event == "room_started")
        assert started.room == "e2e-room" and started.body["room"]["sid"] == room.sid
        assert started.id.startswith("EV_")
        await client.room.delete_room(lkapi.DeleteRoomRequest(room="e2e-room"))
        await poll_until(
            lambda: "room_finished" in [e.event for e in receiver.events], timeout=30, message="room_finished"
        )
        names = [e.event for e in receiver.events if e.room == "e2e-room"]
        assert names.index("room_started") < names.index("room_finished")
        assert set(names) <= set(WEBHOOK_NAMES), names  # internal events are not delivered
        await poll_until(
            lambda: (
                {"room_started", "room_finished"}
                <= {e["event"] for e in node_events(node_receiver)["accepted"]}
            ),
            timeout=30,
            message="node receiver got both",
        )
        assert receiver.rejected == [] and node_events(node_receiver)["rejected"] == []
    finally:
        await client.aclose()


async def _create_room(client: lkapi.LiveKitAPI, name: str) -> lk_models.Room | None:
    try:
        return await client.room.create_room(lkapi.CreateRoomRequest(name=name))
    except lkapi.TwirpError as exc:
        if exc.code in ("unavailable", "resource_exhausted", "failed_precondition"):
            return None  # no live SFU node registered yet
        raise
