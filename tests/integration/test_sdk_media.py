"""The official Python SDK (1.2.x and 1.1.x) against the real stack: media, data, RPC, attributes."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parley.testing import Stack

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location(
    "sdk_runner", Path(__file__).with_name("sdk_scripts") / "runner.py"
)
assert _spec is not None and _spec.loader is not None
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)

SERVICES = ["room-state", "sfu", "signaling"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=tmp_path_factory.mktemp("sdk-stack"), services=SERVICES).start()
    yield s
    s.stop()


def scenario_args(stack: Stack) -> dict[str, Any]:
    return {
        "url": stack.ws_url,
        "key": stack.api_key,
        "secret": stack.api_secret,
        "room": f"room-{uuid.uuid4().hex[:8]}",
    }


@pytest.fixture(params=sorted(runner.PYTHONS))
def python(request: pytest.FixtureRequest) -> str:
    return str(runner.PYTHONS[request.param])


async def test_audio_video_and_mute(stack: Stack, python: str) -> None:
    result = await runner.run_scenario(python, "media", scenario_args(stack))
    assert abs(result["frequency"] - 440.0) < 15, result
    assert result["video_size"] == [320, 240], result
    assert result["muted_at_b"] is True, result


async def test_data_rpc_and_attributes(stack: Stack, python: str) -> None:
    result = await runner.run_scenario(python, "data", scenario_args(stack))
    assert result["bob"] == [["alice", "secret", "only-bob"], ["alice", "all", "everyone"]], result
    assert result["carol"] == [["alice", "all", "everyone"]], result
    assert result["rpc"] == "hello alice: ping", result
    assert result["attributes_seen"] is True
    assert result["own_attributes"] == {"mood": "happy"}


async def test_auto_subscribe_off(stack: Stack, python: str) -> None:
    result = await runner.run_scenario(python, "autosub", scenario_args(stack))
    assert result["subscribed_before"] == [], result
    assert len(result["subscribed_after"]) == 1, result
    assert abs(result["frequency"] - 440.0) < 15, result
    # room-state (the Room API) sees what the clients see
    view = result["api_view"]
    assert view["state"] == view["active"] and view["tracks"] == [result["track_sid"]], result


async def test_room_service_acts_on_live_sessions(stack: Stack, python: str) -> None:
    result = await runner.run_scenario(python, "commands", scenario_args(stack))
    assert result["data"] == [["srv", "from-server"]], result
    assert result["role"] == "host"
    assert result["disconnect"]["carol"] == result["reasons"]["removed"], result
    assert result["disconnect"]["alice"] == result["reasons"]["deleted"], result
    assert result["disconnect"]["bob"] == result["reasons"]["deleted"], result
