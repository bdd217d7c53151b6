"""The official Python SDK (1.2.x and 1.1.x) against the real stack: media, data, RPC, attributes.

Both SDKs use /rtc/v1 (one peer connection) by default; ``RoomOptions(single_peer_connection=False)``
forces /rtc (v0, two peer connections). The edge counts accepted connections per path in /metrics,
so each scenario proves which path it really used (no silent fallback, no reconnect).
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
# (SDK, signalling path): every scenario over v1 with both SDKs, and over v0 with 1.2.x
COMBOS = [("sdk-1.2", "v1"), ("sdk-1.1", "v1"), ("sdk-1.2", "v0")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=tmp_path_factory.mktemp("sdk-stack"), services=SERVICES).start()
    yield s
    s.stop()


@pytest.fixture(params=COMBOS, ids=[f"{sdk}-{path}" for sdk, path in COMBOS])
def combo(request: pytest.FixtureRequest) -> tuple[str, str]:
    sdk, path = request.param
    return str(sdk), str(path)


async def run(
    stack: Stack, combo: tuple[str, str], scenario: str, connections: int, **extra: Any
) -> dict[str, Any]:
    """Run a scenario; assert its ``connections`` joins all used the expected path."""
    result: dict[str, Any] = await runner.run_on_path(stack, *combo, scenario, connections, **extra)
    return result


async def test_audio_video_and_mute(stack: Stack, combo: tuple[str, str]) -> None:
    result = await run(stack, combo, "media", 2)
    assert abs(result["frequency"] - 440.0) < 15, result
    assert result["video_size"] == [320, 240], result
    assert result["muted_at_b"] is True, result


async def test_data_rpc_and_attributes(stack: Stack, combo: tuple[str, str]) -> None:
    result = await run(stack, combo, "data", 3)
    assert result["bob"] == [["alice", "secret", "only-bob"], ["alice", "all", "everyone"]], result
    assert result["carol"] == [["alice", "all", "everyone"]], result
    assert result["rpc"] == "hello alice: ping", result
    assert result["attributes_seen"] is True
    assert result["own_attributes"] == {"mood": "happy"}


async def test_auto_subscribe_off(stack: Stack, combo: tuple[str, str]) -> None:
    result = await run(stack, combo, "autosub", 2)
    assert result["subscribed_before"] == [], result
    assert len(result["subscribed_after"]) == 1, result
    assert abs(result["frequency"] - 440.0) < 15, result
    # room-state (the Room API) sees what the clients see
    view = result["api_view"]
    assert view["state"] == view["active"] and view["tracks"] == [result["track_sid"]], result


async def test_room_service_acts_on_live_sessions(stack: Stack, combo: tuple[str, str]) -> None:
    result = await run(stack, combo, "commands", 3)
    assert result["data"] == [["srv", "from-server"]], result
    assert result["role"] == "host"
    assert result["disconnect"]["carol"] == result["reasons"]["removed"], result
    assert result["disconnect"]["alice"] == result["reasons"]["deleted"], result
    assert result["disconnect"]["bob"] == result["reasons"]["deleted"], result


def mids_of(lines: list[str], track_sid: str) -> list[str]:
    """The ``mid=`` the SFU logged when it put ``track_sid`` on a client m-line (v1)."""
    return [
        next(f for f in line.split() if f.startswith("mid=")).removeprefix("mid=")
        for line in lines
        if "subscribed on client m-line" in line and f"track={track_sid}" in line
    ]


def field_of(line: str, name: str) -> str:
    return next(f for f in line.split() if f.startswith(f"{name}=")).removeprefix(f"{name}=")


async def test_track_churn_reuses_freed_m_lines(stack: Stack, combo: tuple[str, str]) -> None:
    """A publishes 5 tones one after the other (each unpublished before the next), then B unsubscribes
    from the last and subscribes again: B hears each track's own frequency, and the subscriber SDP
    stays bounded because freed m-lines (answered/offered inactive once) carry the next tracks."""
    start = len(stack.log("sfu").splitlines())
    v1 = combo[1] == "v1"
    result = await run(stack, combo, "churn", 2)
    expected = [440.0, 660.0, 880.0, 550.0, 770.0, 770.0]
    assert len(result["heard"]) == len(expected), result
    assert all(abs(h - e) < 15 for h, e in zip(result["heard"], expected, strict=True)), result
    assert result["unsubscribed"] == result["sids"], result
    lines = [
        line for line in stack.log("sfu").splitlines()[start:] if f"participant={result['bob_sid']}" in line
    ]
    sdp_lines = [line for line in lines if "answered offer" in line or "sent subscriber offer" in line]
    assert sdp_lines, lines[-20:]
    m_audio = [int(field_of(line, "m_audio")) for line in sdp_lines]
    # without reuse: one more audio m-line per subscription (5 or 6)
    assert max(m_audio) <= 3, m_audio
    if v1:
        mids = [field_of(line, "mid") for line in lines if "subscribed on client m-line" in line]
        assert len(mids) == 6 and len(set(mids)) <= 3, mids
        assert not [line for line in lines if "asked for an offer" in line and "audios=0" not in line]
    else:
        reused = [line for line in lines if "subscribed on a freed m-line" in line]
        assert len(reused) >= 2, reused
        # the Rust SDK surfaces a (mid, stream) pair once per session: the resubscription of the last
        # track must not go back on an m-line that already carried it
        last = [field_of(line, "mid") for line in reused if f"track={result['sids'][-1]}" in line]
        assert len(last) == len(set(last)) <= 1, last


async def test_more_tracks_than_offered_m_lines(stack: Stack, combo: tuple[str, str]) -> None:
    """v1: a 4th audio track needs a 4th recvonly m-line (media_sections_requirement); an
    unsubscription frees its m-line once answered inactive, so a 5th track gets it (or a new one if it
    comes before that answer). v0: the same churn over the server-offered subscriber PC."""
    start = len(stack.log("sfu").splitlines())
    result = await run(stack, combo, "manytracks", 2)
    sids = result["sids"]
    assert sorted(result["subscribed"]) == sorted(sids), result
    assert result["unsubscribed"] == [sids[0]], result
    assert abs(result["frequency_fourth"] - 440.0) < 15, result
    assert abs(result["frequency_fifth"] - 440.0) < 15, result
    lines = stack.log("sfu").splitlines()[start:]
    if combo[1] == "v1":
        requests = [line for line in lines if "asked for an offer" in line and "audios=1" in line]
        assert 1 <= len(requests) <= 2, requests
        mids = [mids_of(lines, sid) for sid in sids]
        assert all(len(m) == 1 for m in mids), mids
        distinct = len({m[0] for m in mids})
        assert distinct == 5 - (mids[4] == mids[0]) and distinct == 3 + len(requests), mids
