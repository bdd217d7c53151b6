"""Agent dispatch latency: room creation -> job accepted, CreateDispatch -> agent connected.

Starts its own stack (nats-server, Valkey, room-state, sfu, dispatch, signaling) in a temp
directory. The 10 workers are lightweight protocol-level workers in this process: each
speaks the worker protocol over /agent with livekit.protocol.agent messages (register,
status every 2.5 s, accepts every availability request at once, update_job RUNNING on
assignment), as livekit-agents does but without job processes. "Job accepted" is the moment
the worker holds its assignment (job + token). "Agent connected" is measured twice: to the
assignment (token in hand) for every dispatch, and, for a sample, to a real /rtc join of
the agent with that token through the official Python SDK (livekit.rtc Room.connect).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from livekit import api, rtc
from livekit.protocol import agent

from parley.testing.stack import Stack

WORKERS = 10
ROOMS = 200
JOIN_SAMPLE = 20
CONCURRENCY = 8


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class ProtocolWorker:
    """A worker speaking livekit.protocol.agent over /agent, without job processes."""

    def __init__(self, url: str, key: str, secret: str, agent_name: str) -> None:
        self.url, self.key, self.secret, self.agent_name = url, key, secret, agent_name
        self.assigned: dict[str, tuple[float, str]] = {}
        self.waiters: dict[str, asyncio.Future[tuple[float, str]]] = {}
        self.jobs = 0
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        token = api.AccessToken(self.key, self.secret).with_grants(api.VideoGrants(agent=True)).to_jwt()
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(
            f"{self.url}/agent", headers={"Authorization": f"Bearer {token}"}, heartbeat=30
        )
        register = agent.WorkerMessage()
        register.register.version = "1.8.9"
        register.register.agent_name = self.agent_name
        register.register.allowed_permissions.agent = True
        register.register.allowed_permissions.can_publish = True
        register.register.allowed_permissions.can_subscribe = True
        register.register.allowed_permissions.can_publish_data = True
        await self._ws.send_bytes(register.SerializeToString())
        first = agent.ServerMessage.FromString(await self._ws.receive_bytes(timeout=10))
        assert first.WhichOneof("message") == "register", first
        await self._status()
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._status_loop())]

    def wait_for(self, room: str) -> asyncio.Future[tuple[float, str]]:
        fut = self.waiters.get(room)
        if fut is None:
            fut = self.waiters[room] = asyncio.get_running_loop().create_future()
            if room in self.assigned:
                fut.set_result(self.assigned[room])
        return fut

    async def _send(self, msg: agent.WorkerMessage) -> None:
        assert self._ws is not None
        await self._ws.send_bytes(msg.SerializeToString())

    async def _status(self) -> None:
        update = agent.UpdateWorkerStatus(
            status=agent.WorkerStatus.WS_AVAILABLE, load=min(1.0, self.jobs / 100), job_count=self.jobs
        )
        await self._send(agent.WorkerMessage(update_worker=update))

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(2.5)
            await self._status()

    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            if raw.type != aiohttp.WSMsgType.BINARY:
                continue
            msg = agent.ServerMessage.FromString(raw.data)
            which = msg.WhichOneof("message")
            if which == "availability":
                answer = agent.WorkerMessage()
                answer.availability.job_id = msg.availability.job.id
                answer.availability.available = True
                answer.availability.participant_attributes["lk.agent.name"] = self.agent_name
                await self._send(answer)
            elif which == "assignment":
                now = time.perf_counter()
                room = msg.assignment.job.room.name
                self.jobs += 1
                self.assigned[room] = (now, msg.assignment.token)
                fut = self.waiters.get(room)
                if fut is not None and not fut.done():
                    fut.set_result((now, msg.assignment.token))
                update = agent.UpdateJobStatus(
                    job_id=msg.assignment.job.id, status=agent.JobStatus.JS_RUNNING
                )
                await self._send(agent.WorkerMessage(update_job=update))
            elif which == "termination":
                self.jobs = max(0, self.jobs - 1)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()


def _first(workers: list[ProtocolWorker], room: str) -> asyncio.Future[tuple[float, str]]:
    """Resolves with the first worker's assignment for ``room``."""
    futs = [w.wait_for(room) for w in workers]

    async def first() -> tuple[float, str]:
        done, _ = await asyncio.wait(futs, return_when=asyncio.FIRST_COMPLETED, timeout=30)
        if not done:
            raise TimeoutError(f"no assignment for {room}")
        return next(iter(done)).result()

    return asyncio.ensure_future(first())


async def _measure(
    workers: list[ProtocolWorker],
    rooms: list[str],
    start_job: object,
    join_url: str = "",
    concurrency: int = 1,
) -> tuple[list[float], list[float], dict[str, int]]:
    """Latency to assignment per room (and to a real join when ``join_url``), ``concurrency`` in flight."""
    to_assign: list[float] = []
    to_join: list[float] = []
    queue = iter(rooms)

    async def one() -> None:
        for room in queue:
            waiter = _first(workers, room)
            t0 = time.perf_counter()
            await start_job(room)  # type: ignore[operator]
            assigned_at, token = await waiter
            to_assign.append((assigned_at - t0) * 1000)
            if join_url:
                joined = rtc.Room()
                await asyncio.wait_for(joined.connect(join_url, token), 30)
                to_join.append((time.perf_counter() - t0) * 1000)
                await joined.disconnect()

    await asyncio.gather(*[one() for _ in range(concurrency)])
    per_worker = {w.agent_name + str(i): len(w.assigned) for i, w in enumerate(workers)}
    return to_assign, to_join, per_worker


async def _bench(stack: Stack) -> list[str]:
    lkapi = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    run = uuid.uuid4().hex[:6]
    rows: list[str] = []
    auto = [ProtocolWorker(stack.ws_url, stack.api_key, stack.api_secret, "") for _ in range(WORKERS)]
    named = [ProtocolWorker(stack.ws_url, stack.api_key, stack.api_secret, "bench") for _ in range(WORKERS)]
    try:
        await asyncio.gather(*(w.start() for w in auto + named))

        async def create_room(room: str) -> None:
            await lkapi.room.create_room(api.CreateRoomRequest(name=room))

        async def create_dispatch(room: str) -> None:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name="bench", room=room)
            )

        # warm-up
        await _measure(auto, [f"warm-{run}-{i}" for i in range(10)], create_room)
        cases = [
            ("CreateRoom -> job accepted (automatic dispatch)", auto, "room", create_room, 1),
            ("CreateDispatch -> job accepted (agent holds its token)", named, "disp", create_dispatch, 1),
            (f"CreateRoom -> job accepted, {CONCURRENCY} in flight", auto, "roomc", create_room, CONCURRENCY),
            (
                f"CreateDispatch -> job accepted, {CONCURRENCY} in flight",
                named,
                "dispc",
                create_dispatch,
                CONCURRENCY,
            ),
        ]
        for label, workers, tag, start_job, concurrency in cases:
            for w in workers:
                w.assigned.clear()
            rooms = [f"{tag}-{run}-{i}" for i in range(ROOMS)]
            t0 = time.perf_counter()
            lat, _, per_worker = await _measure(workers, rooms, start_job, concurrency=concurrency)
            elapsed = time.perf_counter() - t0
            spread = sorted(per_worker.values())
            rows.append(
                f"| {label} | {len(lat)} | {statistics.median(lat):.1f} | {_pct(lat, 0.99):.1f} | "
                f"{max(lat):.1f} | {len(lat) / elapsed:.0f} | {spread[0]}-{spread[-1]} |"
            )
        rooms = [f"join-{run}-{i}" for i in range(JOIN_SAMPLE)]
        _, joins, _ = await _measure(named, rooms, create_dispatch, join_url=stack.ws_url)
        rows.append(
            f"| CreateDispatch -> agent connected (real /rtc join, sequential) | {len(joins)} | "
            f"{statistics.median(joins):.1f} | {_pct(joins, 0.99):.1f} | {max(joins):.1f} | - | - |"
        )
    finally:
        for w in auto + named:
            await w.aclose()
        await lkapi.aclose()
    return rows


async def run() -> str:
    with tempfile.TemporaryDirectory(prefix="parley-bench-dispatch-") as tmp:
        stack = Stack(
            log_dir=Path(tmp),
            services=["room-state", "sfu", "dispatch", "signaling"],
            config={"logging": {"level": "warning"}},
        )
        await asyncio.to_thread(stack.start)
        try:
            rows = await _bench(stack)
        finally:
            await asyncio.to_thread(stack.stop)
    lines = [
        "## Agent dispatch (bench_dispatch)",
        "",
        f"{WORKERS} protocol-level workers per agent name (livekit.protocol.agent over /agent, in the "
        f"bench process, no job processes), {ROOMS} rooms per case, one at a time or {CONCURRENCY} in "
        "flight; one dispatch instance. Latency from the API call to the worker holding its assignment; the last row "
        f"joins the agent for real with the assigned token ({JOIN_SAMPLE} rooms, one at a time). Client, "
        "workers, edge, room-state, dispatch, SFU, NATS and Valkey share the machine.",
        "",
        "| case | n | p50 ms | p99 ms | max ms | jobs/s | jobs per worker (min-max) |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    return "\n".join(lines) + "\n"
