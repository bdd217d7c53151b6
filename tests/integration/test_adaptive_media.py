"""Adaptive media judged by the official Python SDK: a subscriber picks simulcast layers.

The publisher (Python SDK 1.2.x, simulcast 720p) sends LOW/MEDIUM/HIGH layers; the subscriber's
``set_video_quality`` reaches the SFU as ``UpdateTrackSettings`` and the frames it decodes change
resolution to the requested layer's (the SFU switches layers on keyframes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parley.testing import Stack, load_script

pytestmark = pytest.mark.integration

runner = load_script(Path(__file__).with_name("sdk_scripts") / "runner.py", "sdk_runner")

SERVICES = ["room-state", "sfu", "signaling"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=tmp_path_factory.mktemp("adaptive-stack"), services=SERVICES).start()
    yield s
    s.stop()


def _check_quality_steps(result: dict[str, Any]) -> None:
    steps = result["steps"]
    sizes = [tuple(s["size"]) if s["size"] else None for s in steps]
    assert [s["quality"] for s in steps] == ["HIGH", "LOW", "MEDIUM", "HIGH"], result
    assert all(sizes), result
    high, low, medium, high_again = sizes
    assert high == (1280, 720) and high_again == high, result
    assert low is not None and medium is not None
    assert low[0] < medium[0] < high[0], result  # three distinct layers, in order
    # connection_quality_update reaches the SDK (ConnectionQualityChanged) for Bob and for Alice
    good = {"QUALITY_EXCELLENT", "QUALITY_GOOD"}
    assert set(result["connection_quality"]) == {"alice", "bob"}, result
    assert set(result["connection_quality"].values()) <= good, result


@pytest.mark.parametrize("path", ["v1", "v0"])
async def test_subscriber_switches_vp8_simulcast_layers(stack: Stack, path: str) -> None:
    result = await runner.run_on_path(stack, "sdk-1.2", path, "quality", 2)
    _check_quality_steps(result)


async def test_subscriber_switches_h264_simulcast_layers(stack: Stack) -> None:
    result = await runner.run_on_path(stack, "sdk-1.2", "v1", "quality", 2, codec="h264")
    _check_quality_steps(result)
