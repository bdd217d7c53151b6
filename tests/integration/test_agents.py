"""Official livekit-agents 1.8 workers against the real stack: /agent, automatic and explicit
dispatch, the agent in the room as an AGENT participant, and an echo agent's audio."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from livekit import api
from livekit.protocol import agent, models

from parley.auth import Claims, VideoGrant, create_token
from parley.testing import Stack, load_script, poll_until

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).resolve().parents[1] / "agents"
harness = load_script(AGENTS / "harness.py", "agents_harness")

SERVICES = ["room-state", "sfu", "dispatch", "signaling"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=tmp_path_factory.mktemp("agents-stack"), services=SERVICES).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def workers(stack: Stack) -> Iterator[dict[str, Any]]:
    """An automatic worker that joins its rooms, a named one, and a named echo agent."""
    log_dir = stack.log_dir
    common = {
        "url": stack.ws_url,
        "api_key": stack.api_key,
        "api_secret": stack.api_secret,
        "log_dir": log_dir,
    }
    started = {
        "auto": harness.AgentWorker("probe_agent.py", name="auto", env={"PROBE_CONNECT": "1"}, **common),
        "named": harness.AgentWorker(
            "probe_agent.py", name="named", env={"PROBE_AGENT_NAME": "named-probe"}, **common
        ),
        "echo": harness.AgentWorker("echo_agent.py", name="echo", env={"ECHO_AGENT_NAME": "echo"}, **common),
    }
    for w in started.values():
        w.start()
    yield started
    for w in started.values():
        w.stop()


@pytest_asyncio.fixture
async def lkapi(stack: Stack) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    yield client
    await client.aclose()


async def wait_registered(workers: dict[str, Any]) -> None:
    for w in workers.values():
        await poll_until(w.registered, timeout=60, message=f"worker {w.name} registered\n{w.tail()}")


def room_name() -> str:
    return f"agents-{uuid.uuid4().hex[:8]}"


async def test_agent_socket_needs_agent_grant(stack: Stack) -> None:
    plain = create_token(
        stack.api_key, stack.api_secret, Claims(identity="x", video=VideoGrant(room_join=True))
    )
    granted = create_token(stack.api_key, stack.api_secret, Claims(video=VideoGrant(agent=True)))
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": f"Bearer {plain}"}):
            async with http.get(f"{stack.http_url}/agent", headers=headers) as resp:
                assert resp.status == 401
        # a granted worker is upgraded and answered with register first
        async with http.ws_connect(
            f"{stack.ws_url}/agent", headers={"Authorization": f"Bearer {granted}"}
        ) as ws:
            register = agent.WorkerMessage()
            register.register.version = "1.8.9"
            register.register.agent_name = "socket-probe"
            await ws.send_bytes(register.SerializeToString())
            reply = agent.ServerMessage()
            reply.ParseFromString(await ws.receive_bytes(timeout=10))
            assert reply.WhichOneof("message") == "register"
            assert reply.register.worker_id.startswith("AW_")
            assert reply.register.server_info.agent_protocol == 1
            ping = agent.WorkerMessage(ping=agent.WorkerPing(timestamp=1234))
            await ws.send_bytes(ping.SerializeToString())
            pong = agent.ServerMessage()
            pong.ParseFromString(await ws.receive_bytes(timeout=10))
            assert pong.pong.last_timestamp == 1234


async def test_automatic_dispatch_joins_room_as_agent(
    stack: Stack, workers: dict[str, Any], lkapi: api.LiveKitAPI
) -> None:
    await wait_registered(workers)
    room = room_name()
    await lkapi.room.create_room(api.CreateRoomRequest(name=room))

    async def agent_participant() -> models.ParticipantInfo | None:
        listed = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
        found = [p for p in listed.participants if p.identity.startswith("agent-AJ_")]
        return found[0] if found else None

    joined = await poll_until(
        agent_participant, timeout=60, message=f"agent in {room}\n{workers['auto'].tail()}"
    )
    assert joined is not None
    assert joined.kind == models.ParticipantInfo.Kind.AGENT
    assert joined.attributes["lk.agent.name"] == ""
    jobs = [j for j in workers["auto"].events() if j["room"] == room]
    assert len(jobs) == 1 and jobs[0]["type"] == agent.JobType.JT_ROOM
    assert joined.identity == f"agent-{jobs[0]['job_id']}"
    # the automatic dispatch and its running job are listed
    listed = await lkapi.agent_dispatch.list_dispatch(room_name=room)
    assert [d.agent_name for d in listed] == [""]
    state = listed[0].state.jobs[0].state
    assert state.status == agent.JobStatus.JS_RUNNING and state.participant_identity == joined.identity
    # named workers are never dispatched automatically
    assert not [j for j in workers["named"].events() if j["room"] == room]


async def test_explicit_dispatch_reaches_named_worker(
    stack: Stack, workers: dict[str, Any], lkapi: api.LiveKitAPI
) -> None:
    await wait_registered(workers)
    room = room_name()
    created = await lkapi.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name="named-probe", room=room, metadata='{"hello": 1}')
    )
    assert created.id.startswith("AD_") and created.agent_name == "named-probe"

    def named_job() -> list[dict[str, Any]]:
        return [j for j in workers["named"].events() if j["room"] == room]

    jobs = await poll_until(named_job, timeout=30, message=f"named job\n{workers['named'].tail()}")
    assert jobs[0]["dispatch_id"] == created.id and jobs[0]["metadata"] == '{"hello": 1}'

    async def running() -> list[api.AgentDispatch]:
        listed = await lkapi.agent_dispatch.list_dispatch(room_name=room)
        ok = (
            listed
            and listed[0].state.jobs
            and listed[0].state.jobs[0].state.status == agent.JobStatus.JS_RUNNING
        )
        return listed if ok else []

    listed = await poll_until(running, timeout=15, message="dispatch listed as running")
    assert [d.id for d in listed] == [created.id]
    assert listed[0].state.jobs[0].id == jobs[0]["job_id"]
    # the room got no automatic dispatch besides the explicit one
    assert not [j for j in workers["auto"].events() if j["room"] == room]

    await lkapi.agent_dispatch.delete_dispatch(created.id, room)

    def shut_down() -> bool:
        return any(e["job_id"] == jobs[0]["job_id"] for e in workers["named"].events("shutdown"))

    await poll_until(shut_down, timeout=20, message="job terminated after DeleteDispatch")
    assert await lkapi.agent_dispatch.list_dispatch(room_name=room) == []


async def test_echo_agent_plays_back_a_tone(
    stack: Stack, workers: dict[str, Any], lkapi: api.LiveKitAPI
) -> None:
    await wait_registered(workers)
    room = room_name()
    # the room's agents come from CreateRoomRequest.agents
    await lkapi.room.create_room(
        api.CreateRoomRequest(name=room, agents=[api.RoomAgentDispatch(agent_name="echo")])
    )
    proc = await _run_user(stack, room)
    assert abs(proc["frequency"] - 440.0) < 15, proc
    assert proc["agent_kind"] == models.ParticipantInfo.Kind.AGENT, proc


async def _run_user(stack: Stack, room: str) -> dict[str, Any]:
    import asyncio
    import json

    args = {"url": stack.ws_url, "key": stack.api_key, "secret": stack.api_secret, "room": room}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(AGENTS / "echo_user.py"),
        json.dumps(args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise AssertionError(f"echo user failed (exit {proc.returncode}):\n{text[-6000:]}")
