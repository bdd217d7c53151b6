"""Two signaling edges and two SFU nodes: clients on different edges share a room and hear each other
(over /rtc/v1, one peer connection each)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from parley.testing import Stack, load_script

pytestmark = pytest.mark.integration

runner = load_script(Path(__file__).with_name("sdk_scripts") / "runner.py", "sdk_runner")


async def test_participants_on_different_edges_share_a_room(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(services=["room-state", "sfu", "signaling"], instances={"signaling": 2, "sfu": 2})
    args = {
        "url": f"ws://127.0.0.1:{stack.edge(0).port}",
        "url_b": f"ws://127.0.0.1:{stack.edge(1).port}",
        "key": stack.api_key,
        "secret": stack.api_secret,
        "room": f"multi-{uuid.uuid4().hex[:8]}",
    }
    result = await runner.run_scenario(str(runner.PYTHONS["sdk-1.2"]), "media", args)
    assert abs(result["frequency"] - 440.0) < 15, result
    assert result["video_size"] == [320, 240], result
    # both edges relayed this room's signalling (over /rtc/v1, the SDK default), and only one SFU
    # node hosted it
    for edge in range(2):
        connected = [line for line in stack.log("signaling", edge).splitlines() if "client connected" in line]
        assert connected and all("path=v1" in line for line in connected), connected
    hosting = [i for i in range(2) if f"room={args['room']}" in stack.log("sfu", i)]
    assert len(hosting) == 1, hosting
