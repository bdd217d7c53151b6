"""livekit.Egress at the edge on a MemoryBus: every method needs roomRecord (any room, as LiveKit's
EnsureRecordPermission), then calls its declared RPC with the same message; the controller's error
codes and messages reach the API unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf.message import Message
from livekit.protocol import egress as lk

from parley.auth import Claims, VideoGrant
from parley.bus import ErrorCode, MemoryBus, Rpc, RpcError, rpcs
from parley.signaling.api import egress_service
from parley.signaling.api.errors import ApiError, to_api_error
from parley.signaling.api.registry import Registry

from .memory_edge import API_KEY, admin, memory_edge

pytestmark = pytest.mark.unit

RECORDER = Claims(api_key=API_KEY, video=VideoGrant(room_record=True))
"""What livekit-api's EgressService signs: roomRecord only, no room."""

CALLS: list[tuple[str, Message]] = [
    ("StartEgress", lk.StartEgressRequest(room_name="r1")),
    ("StartRoomCompositeEgress", lk.RoomCompositeEgressRequest(room_name="r1")),
    ("StartWebEgress", lk.WebEgressRequest(url="https://example.com")),
    ("StartParticipantEgress", lk.ParticipantEgressRequest(room_name="r1", identity="a")),
    ("StartTrackCompositeEgress", lk.TrackCompositeEgressRequest(room_name="r1", audio_track_id="TR_a")),
    ("StartTrackEgress", lk.TrackEgressRequest(room_name="r1", track_id="TR_a")),
    ("UpdateLayout", lk.UpdateLayoutRequest(egress_id="EG_x", layout="grid")),
    ("UpdateStream", lk.UpdateStreamRequest(egress_id="EG_x")),
    ("ListEgress", lk.ListEgressRequest(room_name="r1")),
    ("StopEgress", lk.StopEgressRequest(egress_id="EG_x")),
]


@pytest_asyncio.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    b = MemoryBus("signaling-egress-unit")
    yield b
    await b.aclose()


@pytest.fixture
def registry(bus: MemoryBus) -> Registry:
    r = Registry()
    r.register(egress_service.methods(memory_edge(bus)))
    return r


def rpc_named(name: str) -> Rpc[Any, Any]:
    return next(rpc for rpc in rpcs.ALL if rpc.name == name)


@pytest.mark.parametrize(("name", "request_message"), CALLS, ids=[c[0] for c in CALLS])
async def test_each_method_needs_room_record_then_calls_its_rpc(
    bus: MemoryBus, registry: Registry, name: str, request_message: Message
) -> None:
    rpc = rpc_named(name)
    seen: list[Message] = []

    async def handler(request: Message) -> Message:
        seen.append(request)
        response: Message = rpc.response()
        return response

    await bus.serve(rpc, handler)
    method = registry.get(egress_service.SERVICE, name)
    assert method is not None
    assert (method.request_type, method.response_type) == (rpc.request, rpc.response)
    with pytest.raises(ApiError) as refused:
        await method.handler(request_message, admin())  # roomAdmin and the rest, no roomRecord
    assert (refused.value.code, refused.value.message) == ("unauthenticated", "permissions denied")
    assert seen == []
    assert isinstance(await method.handler(request_message, RECORDER), rpc.response)
    assert seen == [request_message]


async def test_the_controller_errors_pass_through(bus: MemoryBus, registry: Registry) -> None:
    async def stop(request: lk.StopEgressRequest) -> lk.EgressInfo:
        raise RpcError(ErrorCode.FAILED_PRECONDITION, "egress with status EGRESS_COMPLETE cannot be stopped")

    await bus.serve(rpcs.STOP_EGRESS, stop)
    method = registry.get(egress_service.SERVICE, "StopEgress")
    assert method is not None
    with pytest.raises(RpcError) as err:
        await method.handler(lk.StopEgressRequest(egress_id="EG_x"), RECORDER)
    error = to_api_error(err.value)
    assert (error.code, error.status) == ("failed_precondition", 412)
    assert error.message == "egress with status EGRESS_COMPLETE cannot be stopped"
