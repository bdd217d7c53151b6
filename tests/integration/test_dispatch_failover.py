"""Two official agent workers share rooms by load; when one dies its jobs move to the other.
Two dispatch instances run, so offers and worker connections cross instances."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from livekit import api
from livekit.protocol import agent

from parley.bus import Delivery, connect, subjects
from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent
from parley.testing import Stack, load_script, poll_until

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).resolve().parents[1] / "agents"
harness = load_script(AGENTS / "harness.py", "agents_harness")

ROOMS = 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(
        log_dir=tmp_path_factory.mktemp("failover-stack"),
        services=["room-state", "sfu", "dispatch", "signaling"],
        instances={"dispatch": 2},
    ).start()
    yield s
    s.stop()


@pytest.fixture
def workers(stack: Stack) -> Iterator[list[Any]]:
    common = {
        "url": stack.ws_url,
        "api_key": stack.api_key,
        "api_secret": stack.api_secret,
        "log_dir": stack.log_dir,
    }
    started = [
        harness.AgentWorker(
            "probe_agent.py", name=f"share-{i}", env={"PROBE_CAPACITY": "40", "PROBE_IDLE": "4"}, **common
        ).start()
        for i in range(2)
    ]
    yield started
    for w in started:
        w.stop()


@pytest_asyncio.fixture
async def lkapi(stack: Stack) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    yield client
    await client.aclose()


async def running_jobs(lkapi: api.LiveKitAPI, rooms: list[str]) -> dict[str, agent.Job]:
    listed = await asyncio.gather(*(lkapi.agent_dispatch.list_dispatch(room_name=r) for r in rooms))
    out: dict[str, agent.Job] = {}
    for room, dispatches in zip(rooms, listed, strict=True):
        for d in dispatches:
            for job in d.state.jobs:
                if job.state.status == agent.JobStatus.JS_RUNNING:
                    out[room] = job
    return out


async def test_workers_share_rooms_and_take_over(
    stack: Stack, workers: list[Any], lkapi: api.LiveKitAPI
) -> None:
    for w in workers:
        await poll_until(w.registered, timeout=60, message=f"{w.name} registered\n{w.tail()}")
    events: list[RoomEvent] = []
    bus = await connect(stack.nats.url, "failover-test") if stack.nats else None
    assert bus is not None

    async def on_event(d: Delivery) -> None:
        event = RoomEvent()
        event.ParseFromString(d.data)
        if event.event.startswith("agent_job"):
            events.append(event)

    await bus.subscribe(subjects.ROOM_EVENTS_ALL, on_event)
    try:
        prefix = f"share-{uuid.uuid4().hex[:6]}"
        rooms = [f"{prefix}-{i}" for i in range(ROOMS)]
        for room in rooms:
            await lkapi.room.create_room(api.CreateRoomRequest(name=room))

        async def all_running() -> dict[str, agent.Job]:
            jobs = await running_jobs(lkapi, rooms)
            return jobs if len(jobs) == ROOMS else {}

        jobs = await poll_until(all_running, timeout=60, interval=0.3, message="a running job in every room")
        per_worker = Counter(job.state.worker_id for job in jobs.values())
        assert len(per_worker) == 2, per_worker
        # shared, not all on one worker; an even split is not expected: a worker with no running job
        # declines offers while its first one is pending (livekit-agents: PROBE_IDLE in probe_agent)
        assert min(per_worker.values()) >= 2, per_worker
        started = {e.job.id for e in events if e.event == "agent_job_started"}
        assert {j.id for j in jobs.values()} <= started

        # SIGKILL the worker that holds jobs of the first room: its jobs move to the other one
        victim_id = jobs[rooms[0]].state.worker_id
        victim = next(w for w in workers if any(e["worker_id"] == victim_id for e in w.events()))
        survivor = next(w for w in workers if w is not victim)
        moved = {room: job.id for room, job in jobs.items() if job.state.worker_id == victim_id}
        victim.kill()

        async def all_on_survivor() -> dict[str, agent.Job]:
            now = await running_jobs(lkapi, rooms)
            ok = len(now) == ROOMS and len({j.state.worker_id for j in now.values()}) == 1
            return now if ok and victim_id not in {j.state.worker_id for j in now.values()} else {}

        after = await poll_until(
            all_on_survivor, timeout=60, interval=0.3, message="jobs moved to the survivor"
        )
        for room, job_id in moved.items():
            assert after[room].id == job_id  # the same job, dispatched again
        # the survivor's own log of taken jobs trails the dispatch record (it is written by the
        # agent's job process once it runs; seen lagging under CI load)
        await poll_until(
            lambda: set(moved.values()) <= {e["job_id"] for e in survivor.events()},
            timeout=20,
            message=f"the survivor's log shows the moved jobs\n{survivor.tail()}",
        )
    finally:
        await bus.aclose()
