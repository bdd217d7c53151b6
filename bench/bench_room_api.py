"""Room API latency and throughput: CreateRoom and ListRooms over Twirp (livekit-api SDK) and gRPC.

Starts its own stack (nats-server, Valkey, room-state, signaling) in a temp directory.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from livekit import api
from livekit.protocol import models
from livekit.protocol import room as lk

from parley.testing.stack import Stack

SEQUENTIAL = 300
CONCURRENT_TOTAL = 1000
CONCURRENCY = 16
WARMUP = 30

Call = Callable[[int], Awaitable[object]]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(call: Call) -> tuple[float, float, float]:
    """(p50 ms, p99 ms) sequentially, then calls/s with CONCURRENCY in flight."""
    for i in range(WARMUP):
        await call(-1 - i)
    latencies: list[float] = []
    for i in range(SEQUENTIAL):
        start = time.perf_counter()
        await call(i)
        latencies.append((time.perf_counter() - start) * 1000)
    counter = iter(range(SEQUENTIAL, SEQUENTIAL + CONCURRENT_TOTAL))

    async def worker() -> None:
        for i in counter:
            await call(i)

    start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(CONCURRENCY)])
    rate = CONCURRENT_TOTAL / (time.perf_counter() - start)
    return statistics.median(latencies), _pct(latencies, 0.99), rate


async def _bench(stack: Stack) -> list[tuple[str, str, float, float, float]]:
    rows: list[tuple[str, str, float, float, float]] = []
    lkapi = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    token = (
        api.AccessToken(stack.api_key, stack.api_secret)
        .with_grants(api.VideoGrants(room_create=True, room_list=True))
        .with_ttl(__import__("datetime").timedelta(hours=1))
        .to_jwt()
    )
    channel = grpc.aio.insecure_channel(stack.grpc_target)
    metadata = (("authorization", f"Bearer {token}"),)
    create_grpc = channel.unary_unary(
        "/livekit.RoomService/CreateRoom",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=models.Room.FromString,
    )
    list_grpc = channel.unary_unary(
        "/livekit.RoomService/ListRooms",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=lk.ListRoomsResponse.FromString,
    )
    try:
        cases: list[tuple[str, str, Call]] = [
            ("Twirp", "CreateRoom", lambda i: lkapi.room.create_room(api.CreateRoomRequest(name=f"tw-{i}"))),
            (
                "Twirp",
                "ListRooms",
                lambda i: lkapi.room.list_rooms(api.ListRoomsRequest(names=["tw-1", "tw-2"])),
            ),
            (
                "gRPC",
                "CreateRoom",
                lambda i: create_grpc(lk.CreateRoomRequest(name=f"g-{i}"), metadata=metadata),
            ),
            (
                "gRPC",
                "ListRooms",
                lambda i: list_grpc(lk.ListRoomsRequest(names=["g-1", "g-2"]), metadata=metadata),
            ),
        ]
        for transport, method, call in cases:
            p50, p99, rate = await _measure(call)
            rows.append((transport, method, p50, p99, rate))
        start = time.perf_counter()
        listed = await lkapi.room.list_rooms(api.ListRoomsRequest())
        full_ms = (time.perf_counter() - start) * 1000
        rows.append(("Twirp", f"ListRooms (all {len(listed.rooms)} rooms, one call)", full_ms, full_ms, 0.0))
    finally:
        await lkapi.aclose()
        await channel.close()
    return rows


async def run() -> str:
    with tempfile.TemporaryDirectory(prefix="parley-bench-roomapi-") as tmp:
        stack = Stack(
            log_dir=Path(tmp), services=["room-state", "signaling"], config={"logging": {"level": "warning"}}
        )
        await asyncio.to_thread(stack.start)
        try:
            rows = await _bench(stack)
        finally:
            await asyncio.to_thread(stack.stop)
    lines = [
        "## Room API (bench_room_api)",
        "",
        f"Sequential latency over {SEQUENTIAL} calls after {WARMUP} warm-up calls; throughput with "
        f"{CONCURRENCY} calls in flight over {CONCURRENT_TOTAL} calls. Client, edge, room-state, NATS and "
        "Valkey share the machine. CreateRoom creates a new room on each call.",
        "",
        "| transport | method | p50 ms | p99 ms | calls/s |",
        "|---|---|---|---|---|",
    ]
    for transport, method, p50, p99, rate in rows:
        lines.append(
            f"| {transport} | {method} | {p50:.2f} | {p99:.2f} | {rate:.0f} |"
            if rate
            else f"| {transport} | {method} | {p50:.2f} | {p99:.2f} | - |"
        )
    return "\n".join(lines) + "\n"
