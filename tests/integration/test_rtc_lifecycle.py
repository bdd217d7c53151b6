"""Participants that vanish or never connect media are removed, and room-state says so.

- A client process killed with SIGKILL (the kernel closes its sockets) or frozen with SIGSTOP (its
  sockets stay open, nothing more is sent: the edge's keepalive notices): after the resume window
  (``sfu.resume_window``) the others (official SDK) see it leave with SIGNAL_CLOSE and the Room API
  stops listing it.
- A raw client that completes the join (v0 and v1) but never connects media is removed after
  ``sfu.join_timeout`` with a JOIN_FAILURE leave; room-state emits participant_connection_aborted.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from livekit import api
from livekit.protocol import models, rtc

from parley.auth import Claims, VideoGrant, create_token
from parley.bus import Delivery, connect, subjects
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.testing import Stack, load_script, poll_until

pytestmark = pytest.mark.integration

runner = load_script(Path(__file__).with_name("sdk_scripts") / "runner.py", "sdk_runner")

SERVICES = ["room-state", "sfu", "signaling"]
JOIN_TIMEOUT = 6.0
"""Short for the test; long enough that SDK clients on a busy machine are ACTIVE well before it."""
RESUME_WINDOW = 2.0
"""Short for the test: how long a killed client's session waits for a resume."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(
        log_dir=tmp_path_factory.mktemp("lifecycle-stack"),
        services=SERVICES,
        # a vanished client's session waits sfu.resume_window for a resume before it leaves
        config={"sfu": {"join_timeout": JOIN_TIMEOUT, "resume_window": RESUME_WINDOW}},
    ).start()
    yield s
    s.stop()


@pytest.mark.parametrize(("sig", "limit_s"), [("KILL", 5.0), ("STOP", 30.0)])
async def test_vanished_client_leaves(stack: Stack, sig: str, limit_s: float) -> None:
    result = await runner.run_on_path(stack, "sdk-1.2", "v1", "dropped", 2, signal=sig)
    assert abs(result["frequency"] - 440.0) < 15, result  # the victim was really connected
    assert result["listed_before"] == ["bob", "victim"], result
    assert result["seen_after_s"] < limit_s, result
    assert result["reason"] == models.DisconnectReason.SIGNAL_CLOSE, result
    # room-state dropped it too; bob (connected for longer than sfu.join_timeout) is still there
    assert result["listed_after"] == ["bob"], result
    assert result["api_after_s"] < limit_s + 5, result


def _join_request() -> str:
    request = rtc.JoinRequest(
        client_info=models.ClientInfo(sdk=models.ClientInfo.SDK.PYTHON, protocol=16, client_protocol=2),
        connection_settings=rtc.ConnectionSettings(auto_subscribe=True),
    )
    wrapped = rtc.WrappedJoinRequest(
        compression=rtc.WrappedJoinRequest.Compression.GZIP,
        join_request=gzip.compress(request.SerializeToString()),
    )
    return base64.urlsafe_b64encode(wrapped.SerializeToString()).decode().rstrip("=")


async def _join_and_idle(
    http: aiohttp.ClientSession, stack: Stack, room: str, identity: str, path: str
) -> dict[str, Any]:
    """Join, answer nothing (but keep reading, so WebSocket keepalives are answered), and report the
    leave the server sends and when."""
    tok = create_token(
        stack.api_key,
        stack.api_secret,
        Claims(identity=identity, video=VideoGrant(room_join=True, room=room)),
    )
    url = (
        f"{stack.ws_url}/rtc?sdk=python&protocol=16&client_protocol=2&auto_subscribe=1"
        if path == "v0"
        else f"{stack.ws_url}/rtc/v1?join_request={_join_request()}"
    )
    ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {tok}"})
    kinds: list[str] = []
    leave: rtc.LeaveRequest | None = None
    joined_at = 0.0
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.BINARY:
            break
        response = rtc.SignalResponse.FromString(msg.data)
        kind = response.WhichOneof("message") or ""
        kinds.append(kind)
        if kind == "join":
            joined_at = time.monotonic()
        elif kind == "leave":
            leave = response.leave
    return {
        "kinds": kinds,
        "leave": leave,
        "after_s": time.monotonic() - joined_at,
    }


async def test_join_without_media_is_aborted(stack: Stack) -> None:
    assert stack.nats is not None
    room = f"idle-{uuid.uuid4().hex[:6]}"
    events: list[pb.RoomEvent] = []
    bus = await connect(stack.nats.url, "test-lifecycle")

    async def on_event(delivery: Delivery) -> None:
        events.append(pb.RoomEvent.FromString(delivery.data))

    sub = await bus.subscribe(subjects.room_events(room), on_event)
    lk = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    try:
        async with aiohttp.ClientSession() as http:
            v0, v1 = await asyncio.wait_for(
                asyncio.gather(
                    _join_and_idle(http, stack, room, "idle-v0", "v0"),
                    _join_and_idle(http, stack, room, "idle-v1", "v1"),
                ),
                JOIN_TIMEOUT + 20,
            )
        for result in (v0, v1):
            assert result["kinds"][0] == "join", result
            assert result["leave"] is not None, result
            assert result["leave"].reason == models.DisconnectReason.JOIN_FAILURE, result
            assert result["leave"].action == rtc.LeaveRequest.Action.DISCONNECT, result
            assert JOIN_TIMEOUT - 1 <= result["after_s"] < JOIN_TIMEOUT + 10, result
        assert "offer" in v0["kinds"], v0  # the server offered; the client never answered

        def aborted() -> set[str]:
            return {e.participant.identity for e in events if e.event == "participant_connection_aborted"}

        await poll_until(lambda: aborted() == {"idle-v0", "idle-v1"}, timeout=10, message="aborted events")
        names = [e.event for e in events]
        assert "participant_joined" not in names and "participant_left" not in names, names
        try:
            listed = list(
                (await lk.room.list_participants(api.ListParticipantsRequest(room=room))).participants
            )
        except api.TwirpError as exc:  # the empty room may already be gone
            assert exc.code == "not_found", exc
            listed = []
        assert listed == []
    finally:
        await lk.aclose()
        await sub.unsubscribe()
        await bus.aclose()
