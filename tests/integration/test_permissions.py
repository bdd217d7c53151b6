"""Grant-based permissions enforced by the SFU, observed through the official Python SDK:
canPublishSources, canSubscribe, canPublishData, hidden and canUpdateOwnMetadata.

Scenarios prove "never seen" with barriers (see sdk_scripts/scenarios_features.py), and, where the
SFU's own decision is the only evidence, by reading the decision from its log.
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
V1_12 = ("sdk-1.2", "v1")
V1_11 = ("sdk-1.1", "v1")
V0_12 = ("sdk-1.2", "v0")


def ids(combos: list[tuple[str, str]]) -> list[str]:
    return [f"{sdk}-{path}" for sdk, path in combos]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=tmp_path_factory.mktemp("permissions"), services=SERVICES).start()
    yield s
    s.stop()


async def run(stack: Stack, combo: tuple[str, str], scenario: str, connections: int) -> dict[str, Any]:
    sfu_log = str(stack.log_dir / "sfu-0.log")
    result: dict[str, Any] = await runner.run_on_path(stack, *combo, scenario, connections, sfu_log=sfu_log)
    return result


async def test_publish_sources_allow_only_the_microphone(stack: Stack) -> None:
    """The SDK's camera publish fails (the SFU answers NOT_ALLOWED; this SDK waits for its own 10 s
    publication timeout, as it does against LiveKit); the participant stays connected, its
    microphones work, and nobody (clients or the Room API) ever sees a camera."""
    result = await run(stack, V1_12, "publish_sources", 2)
    assert "PublishTrackError" in result["camera_error"], result
    assert "reason=NOT_ALLOWED" in result["refusal_logged"], result
    assert result["connected_after"] is True, result
    mic = result["microphone"]
    assert result["seen_at_bob"] == [mic, mic], result
    assert result["api_sources"] == [mic, mic], result


@pytest.mark.parametrize("combo", [V1_12, V1_11, V0_12], ids=ids([V1_12, V1_11, V0_12]))
async def test_can_subscribe_false(stack: Stack, combo: tuple[str, str]) -> None:
    """nosub learns of Alice's track but never receives it; its own track reaches Bob."""
    start = len(stack.log("sfu").splitlines())
    result = await run(stack, combo, "no_subscribe", 3)
    assert result["nosub_subscribed"] == [], result
    assert result["publication_track_at_nosub"] is False, result
    assert abs(result["frequency_alice_at_bob"] - 440.0) < 15, result
    assert abs(result["frequency_nosub_at_bob"] - 440.0) < 15, result
    lines = stack.log("sfu").splitlines()[start:]
    assert any("subscribed on client m-line" in line for line in lines) == (combo[1] == "v1")
    assert not [
        line for line in lines if "subscribed on client m-line" in line and result["nosub_sid"] in line
    ]


@pytest.mark.parametrize("combo", [V1_12, V0_12], ids=ids([V1_12, V0_12]))
async def test_can_publish_data_false(stack: Stack, combo: tuple[str, str]) -> None:
    """The refused packet never reaches Bob; once UpdateParticipant grants data, the next one does."""
    result = await run(stack, combo, "no_data", 2)
    assert result["received"] == ["allowed"], result


@pytest.mark.parametrize("combo", [V1_12, V1_11, V0_12], ids=ids([V1_12, V1_11, V0_12]))
async def test_hidden_participant(stack: Stack, combo: tuple[str, str]) -> None:
    """ghost (hidden) hears Alice; Alice gets no event for it and does not list it, nor does Bob who
    joined later; the Room API lists it (as LiveKit's ListParticipants does)."""
    result = await run(stack, combo, "hidden", 3)
    assert abs(result["frequency_at_ghost"] - 440.0) < 15, result
    assert result["api_identities"] == ["alice", "ghost"], result
    assert result["alice_events"] == [["connected", "bob"], ["disconnected", "bob"]], result
    assert result["alice_sees"] == ["bob"], result
    assert result["bob_sees"] == ["alice"], result


@pytest.mark.parametrize("combo", [V1_12, V1_11], ids=ids([V1_12, V1_11]))
async def test_can_update_own_metadata_false(stack: Stack, combo: tuple[str, str]) -> None:
    """set_metadata and set_attributes come back NOT_ALLOWED in the SDK; nobody sees a change."""
    result = await run(stack, combo, "metadata_denied", 2)
    assert len(result["errors"]) == 2 and all("NotAllowed" in e for e in result["errors"]), result
    assert result["changes_at_bob"] == [], result
    assert result["metadata_at_bob"] == "" and result["attributes_at_bob"] == {}, result
    assert result["own_metadata"] == "" and result["own_attributes"] == {}, result
