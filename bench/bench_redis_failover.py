"""Redis Sentinel failover: how long requests wait when the Valkey primary dies.

Per trial: a fresh stack (room-state, sfu, signaling) on a Valkey primary + replica + 3 sentinels
(down-after-milliseconds 1000, failover-timeout 5000), a ``livekit-api`` loop of CreateRoom +
ListRooms running, then the primary is SIGKILLed and a Python ``livekit`` SDK join starts at once.
Measured from the kill: a sentinel naming the new primary, the first CreateRoom answered (a write on
the new primary), the SDK join connected, and the slowest API call across the failover. Trials:
``BENCH_FAILOVER_TRIALS`` (default 3).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from livekit import api, rtc

from parley.auth import Claims, VideoGrant, create_token
from parley.devprocs import ValkeySentinelSet
from parley.testing import poll_until
from parley.testing.stack import Stack

TRIALS = int(os.environ.get("BENCH_FAILOVER_TRIALS", "3"))
SERVICES = ["room-state", "sfu", "signaling"]


async def _api_loop(stack: Stack, stop: asyncio.Event, calls: list[tuple[str, float, float, bool]]) -> None:
    client = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    try:
        n = 0
        while not stop.is_set():
            for kind in ("CreateRoom", "ListRooms"):
                started = time.monotonic()
                try:
                    if kind == "CreateRoom":
                        await client.room.create_room(api.CreateRoomRequest(name=f"bench-fo-{n}"))
                    else:
                        await client.room.list_rooms(api.ListRoomsRequest())
                    calls.append((kind, started, time.monotonic(), True))
                except Exception:
                    calls.append((kind, started, time.monotonic(), False))
            n += 1
    finally:
        await client.aclose()


def _wait_promoted(sentinel: ValkeySentinelSet, old: str | None, limit: float = 60.0) -> float:
    deadline = time.monotonic() + limit
    while sentinel.primary_address() in (None, old):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no new primary within {limit}s")
        time.sleep(0.02)
    return time.monotonic()


async def _trial(stack: Stack) -> dict[str, float]:
    sentinel = stack.sentinel
    assert sentinel is not None
    stop = asyncio.Event()
    calls: list[tuple[str, float, float, bool]] = []
    loop = asyncio.create_task(_api_loop(stack, stop, calls))
    participant = rtc.Room()
    try:
        await poll_until(lambda: len(calls) >= 20, timeout=60, message="the API loop runs")
        old = sentinel.primary_address()
        killed = time.monotonic()
        sentinel.kill_primary()
        promoted = asyncio.create_task(asyncio.to_thread(_wait_promoted, sentinel, old))
        token = create_token(
            stack.api_key,
            stack.api_secret,
            Claims(identity="late", video=VideoGrant(room_join=True, room="bench-fo-join")),
        )
        await participant.connect(stack.ws_url, token)
        joined = time.monotonic()
        promoted_at = await promoted
        await poll_until(
            lambda: any(k == "CreateRoom" and ok and s >= promoted_at for k, s, _, ok in calls),
            timeout=60,
            message="a CreateRoom on the new primary",
        )
        stop.set()
        await loop
    finally:
        stop.set()
        await asyncio.gather(loop, return_exceptions=True)
        await participant.disconnect()
    across = [(k, s, e, ok) for k, s, e, ok in calls if e >= killed]
    first_write = min(e for k, s, e, ok in across if ok and k == "CreateRoom" and s >= killed)
    return {
        "promoted": promoted_at - killed,
        "write": first_write - killed,
        "join": joined - killed,
        "slowest": max(e - s for _, s, e, _ in across),
        "failed": float(sum(1 for *_, ok in calls if not ok)),
    }


async def run() -> str:
    results: list[dict[str, float]] = []
    for _ in range(TRIALS):
        with tempfile.TemporaryDirectory(prefix="parley-bench-failover-") as tmp:
            stack = Stack(
                log_dir=Path(tmp),
                services=SERVICES,
                redis_sentinel=True,
                config={"logging": {"level": "warning"}},
            )
            await asyncio.to_thread(stack.start)
            try:
                results.append(await _trial(stack))
            finally:
                await asyncio.to_thread(stack.stop)

    def row(label: str, key: str) -> str:
        values = [r[key] for r in results]
        return f"| {label} | {statistics.median(values):.2f} | {max(values):.2f} |"

    failed = int(sum(r["failed"] for r in results))
    return "\n".join(
        [
            "## Redis Sentinel failover (bench_redis_failover)",
            "",
            f"{TRIALS} trials; each a fresh stack (room-state, sfu, signaling) on a Valkey primary + replica + "
            "3 sentinels (down-after-milliseconds 1000), a livekit-api CreateRoom/ListRooms loop running; the "
            "primary is SIGKILLed and an SDK join starts at once. Seconds from the kill:",
            "",
            "| measure | p50 s | max s |",
            "|---|---|---|",
            row("a sentinel names the new primary", "promoted"),
            row("first CreateRoom answered (write on the new primary)", "write"),
            row("SDK join started at the kill connected", "join"),
            row("slowest API call across the failover", "slowest"),
            "",
            f"Failed API calls: {failed}.",
            "",
        ]
    )
