"""The SFU's /metrics under LiveKit's metric names, with a real SDK publisher and subscriber.

While the official Python SDK publishes a tone and video and a second participant receives them, the
SFU's health port serves rooms, participants, published/subscribed tracks, packets and bytes both
ways with LiveKit's names and labels; after the session the counters have grown and the gauges are
back to zero."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from parley.testing import Stack, load_script, poll_until

pytestmark = pytest.mark.integration

runner = load_script(Path(__file__).with_name("sdk_scripts") / "runner.py", "sdk_runner")

SERVICES = ["room-state", "sfu", "signaling"]
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
Samples = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(port: int) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    samples: Samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        name, raw, value = match.groups()
        samples.setdefault(name, []).append((dict(re.findall(r'(\w+)="([^"]*)"', raw or "")), float(value)))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items()))


async def test_sfu_metrics_with_a_real_publisher_and_subscriber(make_stack: Any, tmp_path: Path) -> None:
    stack: Stack = make_stack(services=SERVICES)
    port = stack.get("sfu").health_port
    before = await scrape(port)
    node_ids = {labels.get("node_id") for labels, _ in before.get("livekit_room_total", [])}
    assert len(node_ids) == 1 and None not in node_ids, before.get("livekit_room_total")
    node = {"node_id": next(iter(node_ids)) or "", "node_type": "SERVER"}
    assert total(before, "livekit_room_total", **node) == 0

    stop_file = tmp_path / "stop"
    args = {
        "url": stack.ws_url,
        "url_b": stack.ws_url,
        "key": stack.api_key,
        "secret": stack.api_secret,
        "room": f"room-{uuid.uuid4().hex[:8]}",
        "stop_file": str(stop_file),
        "hold_s": 90,
    }
    session = asyncio.create_task(
        runner.run_scenario(runner.PYTHONS["sdk-1.2"], "held_session", args, timeout=150)
    )
    try:

        async def live() -> Samples | None:
            if session.done():
                session.result()  # raises the scenario's failure
                raise AssertionError("the session ended before the metrics showed it")
            got = await scrape(port)
            ready = (
                total(got, "livekit_participant_total", **node) == 2
                and total(got, "livekit_track_published_total", kind="VIDEO", **node) == 1
                and total(got, "livekit_track_subscribed_total", kind="VIDEO", **node) == 1
                and total(got, "livekit_packet_total", direction="outgoing", transmission="initial", **node)
                > 200
            )
            return got if ready else None

        during = await poll_until(live, timeout=60, interval=0.5, message="live session in /metrics")
        assert during is not None
        assert total(during, "livekit_room_total", **node) == 1
        assert total(during, "livekit_track_published_total", kind="AUDIO", **node) == 1
        assert total(during, "livekit_track_subscribed_total", kind="AUDIO", **node) == 1
        incoming = total(during, "livekit_packet_total", direction="incoming", transmission="initial", **node)
        assert incoming > 200
        assert total(during, "livekit_packet_bytes", direction="incoming", transmission="initial", **node) > 0
        assert total(during, "livekit_packet_bytes", direction="outgoing", transmission="initial", **node) > 0
        for name in ("livekit_nack_total", "livekit_pli_total", "livekit_packet_loss_total"):
            directions = {
                labels["direction"] for labels, _ in during[name] if labels.get("node_id") == node["node_id"]
            }
            assert directions == {"incoming", "outgoing"}, (name, during[name])
        assert "parley_sfu_media_errors_total" in during
        # RTT and jitter are sampled every sfu.stats_interval from the receivers' reports
        await poll_until(
            lambda: _histogram_seen(port, node),
            timeout=30,
            interval=0.5,
            message="RTT and jitter histograms",
        )

        async def still_growing() -> bool:  # the histograms may already be there a moment later
            later = await scrape(port)
            return total(later, "livekit_packet_total", direction="incoming", **node) > incoming

        await poll_until(still_growing, timeout=10, interval=0.2, message="incoming packets still counted")
    finally:
        stop_file.touch()
        result = await session
    assert result["stopped_by_observer"] is True, result

    async def emptied() -> bool:
        got = await scrape(port)
        return total(got, "livekit_participant_total", **node) == 0 and (
            total(got, "livekit_track_subscribed_total", **node) == 0
        )

    await poll_until(emptied, timeout=30, interval=0.5, message="participants gone from /metrics")
    after = await scrape(port)
    assert total(after, "livekit_packet_total", direction="outgoing", **node) > total(
        before, "livekit_packet_total", direction="outgoing", **node
    )


async def _histogram_seen(port: int, node: dict[str, str]) -> bool:
    got = await scrape(port)
    rtt = total(got, "livekit_rtt_ms_count", direction="outgoing", **node)
    jitter_in = total(got, "livekit_jitter_us_count", direction="incoming", **node)
    buckets = [
        labels
        for labels, _ in got.get("livekit_rtt_ms_bucket", [])
        if labels.get("type") in ("AUDIO", "VIDEO")
    ]
    return rtt > 0 and jitter_in > 0 and bool(buckets)
