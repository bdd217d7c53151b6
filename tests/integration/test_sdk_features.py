"""The official Python SDK against the real stack: speakers_changed from audio levels, and data
streams (text and bytes, several chunks) between clients through the SFU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from parley.testing import Stack, load_script

pytestmark = pytest.mark.integration

runner = load_script(Path(__file__).with_name("sdk_scripts") / "runner.py", "sdk_runner")

SERVICES = ["room-state", "sfu", "signaling"]
COMBOS = [("sdk-1.2", "v1"), ("sdk-1.1", "v1"), ("sdk-1.2", "v0")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=tmp_path_factory.mktemp("sdk-features"), services=SERVICES).start()
    yield s
    s.stop()


@pytest.fixture(params=COMBOS, ids=[f"{sdk}-{path}" for sdk, path in COMBOS])
def combo(request: pytest.FixtureRequest) -> tuple[str, str]:
    sdk, path = request.param
    return str(sdk), str(path)


async def test_active_speakers_changed(stack: Stack, combo: tuple[str, str]) -> None:
    """Alice's 440 Hz tone makes her the active speaker at Bob; Carol's silence never does; when
    Alice mutes, the speaker list empties."""
    result = await runner.run_on_path(stack, *combo, "speakers", 3)
    changes = result["changes"]
    assert ["alice"] in result["while_speaking"], result
    assert all("carol" not in change for change in changes), result
    assert changes[-1] == [], result


async def test_data_streams(stack: Stack, combo: tuple[str, str]) -> None:
    """send_text, stream_text (~100 KB in 7000-char writes), send_file and stream_bytes (100 KB each)
    arrive intact at the topic handlers of the other participant."""
    result = await runner.run_on_path(stack, *combo, "streams", 2)
    assert result["chat"] == "hello bob", result
    assert result["story_ok"] is True, result
    assert result["blobs"] == {
        "payload.bin": result["expected_blob"],
        "streamed.bin": result["expected_blob"],
    }
