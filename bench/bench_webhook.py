"""Webhook delivery: event -> delivery latency (p50/p99) and delivered events/s.

Real nats-server, the real ``python -m parley.webhook`` process, and a local aiohttp endpoint
that verifies nothing (so the numbers are the service's). Events are published to JetStream
exactly as room-state publishes them.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp import web
from livekit.protocol import models as lk_models

from parley.bus import connect, subjects
from parley.devprocs.processes import NatsServer, free_port, service_process, wait_for_http
from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent

API_KEY = "devkey"
API_SECRET = "parley-bench-secret-0123456789abcdefghij"
PACED_EVENTS = 300
PACED_RATE = 100.0
BURST_EVENTS = 3000
BURST_ROOMS = 100


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run() -> str:
    work = Path(tempfile.mkdtemp(prefix="parley-bench-webhook-"))
    nats = NatsServer(store_dir=work / "nats", log_path=work / "nats.log")
    nats.start()
    arrivals: dict[str, float] = {}
    app = web.Application()

    async def hook(request: web.Request) -> web.Response:
        arrivals.setdefault(json.loads(await request.read())["id"], time.monotonic())
        return web.Response(text="ok")

    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    health = free_port()
    config = {
        "keys": {API_KEY: API_SECRET},
        "nats": {"url": nats.url},
        "webhook": {"urls": [f"http://127.0.0.1:{port}/hook"]},
        "logging": {"level": "warning", "json_output": False},
    }
    proc = service_process("webhook", config, overrides=[f"health_port={health}"], log_dir=work)
    proc.start()
    bus = await connect(nats.url, "bench-webhook")
    try:
        await asyncio.to_thread(wait_for_http, f"http://127.0.0.1:{health}/healthz", 30.0, proc.proc)
        sent: dict[str, float] = {}
        counter = 0

        async def emit(room: str) -> None:
            nonlocal counter
            counter += 1
            now_ms = int(time.time() * 1000)
            event = RoomEvent(
                id=f"EV_bench_{counter}",
                event="participant_joined",
                created_at=now_ms // 1000,
                created_at_ms=now_ms,
                room_sequence=counter,
                room=lk_models.Room(sid=f"RM_{room}", name=room),
                participant=lk_models.ParticipantInfo(sid=f"PA_{counter}", identity=f"user{counter}"),
            )
            sent[event.id] = time.monotonic()
            await bus.publish_durable(subjects.room_events(room), event, msg_id=event.id)

        async def wait_all(timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while len(arrivals) < len(sent):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(arrivals)}/{len(sent)} delivered after {timeout}s")
                await asyncio.sleep(0.01)

        # warm-up: consumers created, connection pool open
        await emit("warmup")
        await wait_all(30)

        # 1. latency at a steady rate
        base = len(sent)
        start = time.monotonic()
        for i in range(PACED_EVENTS):
            await emit(f"paced{i % 20}")
            await asyncio.sleep(max(0.0, start + (i + 1) / PACED_RATE - time.monotonic()))
        await wait_all(60)
        paced_ids = list(sent)[base:]
        lat = [(arrivals[i] - sent[i]) * 1000 for i in paced_ids]

        # 2. throughput: a burst over many rooms
        base = len(sent)
        t0 = time.monotonic()
        for i in range(BURST_EVENTS):
            await emit(f"burst{i % BURST_ROOMS}")
        published = time.monotonic() - t0
        await wait_all(300)
        burst_ids = list(sent)[base:]
        elapsed = max(arrivals[i] for i in burst_ids) - t0
        burst_lat = [(arrivals[i] - sent[i]) * 1000 for i in burst_ids]
    finally:
        await bus.aclose()
        proc.stop()
        await runner.cleanup()
        nats.close()

    return "\n".join(
        [
            "## webhook",
            "",
            "Real nats-server + one `python -m parley.webhook` process (8 partitions, defaults) + a local "
            "aiohttp endpoint; events published to JetStream as room-state does (`publish_durable`, "
            "Nats-Msg-Id). Latency = publish call -> endpoint receives the POST (signed, protobuf-JSON).",
            "",
            "| measure | value |",
            "|---|---|",
            f"| latency at {PACED_RATE:.0f} events/s ({PACED_EVENTS} events, 20 rooms), p50 | "
            f"{statistics.median(lat):.1f} ms |",
            f"| latency at {PACED_RATE:.0f} events/s, p99 | {_pct(lat, 0.99):.1f} ms |",
            f"| latency at {PACED_RATE:.0f} events/s, max | {max(lat):.1f} ms |",
            f"| burst of {BURST_EVENTS} events over {BURST_ROOMS} rooms: delivered/s | "
            f"{len(burst_ids) / elapsed:.0f} events/s |",
            f"| burst: publish rate (producer side) | {len(burst_ids) / published:.0f} events/s |",
            f"| burst: latency p50 / p99 (includes queueing) | {statistics.median(burst_lat):.0f} / "
            f"{_pct(burst_lat, 0.99):.0f} ms |",
            "",
        ]
    )
