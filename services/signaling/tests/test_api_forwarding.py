"""The Room and AgentDispatch APIs at the edge on a MemoryBus: each method checks its grants, then
calls its declared RPC with the same message; room-state's error codes reach Twirp and gRPC."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf.message import Message
from livekit.protocol import agent_dispatch as lk_dispatch
from livekit.protocol import models
from livekit.protocol import room as lk

from parley.auth import Claims, create_token
from parley.bus import ErrorCode, MemoryBus, Rpc, RpcError, rpcs
from parley.signaling.api import agent_dispatch, room_service
from parley.signaling.api.errors import ApiError, to_api_error
from parley.signaling.api.registry import Registry
from parley.signaling.api.twirp import TwirpHandler
from parley.signaling.edge import Edge

from .memory_edge import API_KEY, API_SECRET, admin, memory_edge

pytestmark = pytest.mark.unit

Seen = list[tuple[str, Message]]


@pytest_asyncio.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    b = MemoryBus("signaling-unit")
    yield b
    await b.aclose()


@pytest.fixture
def edge(bus: MemoryBus) -> Edge:
    return memory_edge(bus)


@pytest.fixture
def registry(edge: Edge) -> Registry:
    r = Registry()
    r.register(room_service.methods(edge))
    r.register(agent_dispatch.methods(edge))
    return r


async def serve_recording(bus: MemoryBus, rpc: Rpc[Any, Any], seen: Seen) -> None:
    async def handler(request: Message) -> Message:
        seen.append((rpc.name, request))
        if getattr(request, "room", "") == "missing" or getattr(request, "name", "") == "missing":
            raise RpcError(ErrorCode.NOT_FOUND, "requested room does not exist")
        response: Message = rpc.response()
        return response

    await bus.serve(rpc, handler)


ROUTES: list[tuple[str, str, Message]] = [
    (room_service.SERVICE, "CreateRoom", lk.CreateRoomRequest(name="r1")),
    (room_service.SERVICE, "ListRooms", lk.ListRoomsRequest(names=["r1"])),
    (room_service.SERVICE, "DeleteRoom", lk.DeleteRoomRequest(room="r1")),
    (room_service.SERVICE, "ListParticipants", lk.ListParticipantsRequest(room="r1")),
    (room_service.SERVICE, "GetParticipant", lk.RoomParticipantIdentity(room="r1", identity="a")),
    (room_service.SERVICE, "RemoveParticipant", lk.RoomParticipantIdentity(room="r1", identity="a")),
    (room_service.SERVICE, "MutePublishedTrack", lk.MuteRoomTrackRequest(room="r1", identity="a", track_sid="TR_x")),
    (room_service.SERVICE, "UpdateParticipant", lk.UpdateParticipantRequest(room="r1", identity="a", metadata="m")),
    (room_service.SERVICE, "UpdateSubscriptions", lk.UpdateSubscriptionsRequest(room="r1", identity="a")),
    (room_service.SERVICE, "SendData", lk.SendDataRequest(room="r1", data=b"x")),
    (room_service.SERVICE, "UpdateRoomMetadata", lk.UpdateRoomMetadataRequest(room="r1", metadata="m")),
    (room_service.SERVICE, "PerformRpc", lk.PerformRpcRequest(room="r1", destination_identity="a", method="m")),
    (agent_dispatch.SERVICE, "CreateDispatch", lk_dispatch.CreateAgentDispatchRequest(room="r1", agent_name="x")),
    (agent_dispatch.SERVICE, "DeleteDispatch", lk_dispatch.DeleteAgentDispatchRequest(room="r1", dispatch_id="AD_x")),
    (agent_dispatch.SERVICE, "ListDispatch", lk_dispatch.ListAgentDispatchRequest(room="r1")),
]  # fmt: skip


def rpc_named(name: str) -> Rpc[Any, Any]:
    return next(rpc for rpc in rpcs.ALL if rpc.name == name)


@pytest.mark.parametrize(("service", "name", "request_message"), ROUTES, ids=[r[1] for r in ROUTES])
async def test_each_method_calls_its_rpc_with_the_same_message(
    bus: MemoryBus, registry: Registry, service: str, name: str, request_message: Message
) -> None:
    rpc = rpc_named(name)
    seen: Seen = []
    await serve_recording(bus, rpc, seen)
    method = registry.get(service, name)
    assert method is not None
    assert (method.request_type, method.response_type) == (rpc.request, rpc.response)
    response = await method.handler(request_message, admin())
    assert isinstance(response, rpc.response)
    assert seen == [(name, request_message)]


async def test_grants_are_checked_before_anything_reaches_the_bus(bus: MemoryBus, registry: Registry) -> None:
    seen: Seen = []
    await serve_recording(bus, rpcs.LIST_PARTICIPANTS, seen)
    method = registry.get(room_service.SERVICE, "ListParticipants")
    assert method is not None
    with pytest.raises(ApiError) as refused:
        await method.handler(
            lk.ListParticipantsRequest(room="r1"), Claims(api_key=API_KEY, identity="nobody")
        )
    assert refused.value.code == "unauthenticated" and seen == []


async def test_room_state_errors_keep_their_code_on_every_wire(bus: MemoryBus, registry: Registry) -> None:
    await serve_recording(bus, rpcs.DELETE_ROOM, [])
    method = registry.get(room_service.SERVICE, "DeleteRoom")
    assert method is not None
    with pytest.raises(RpcError) as err:
        await method.handler(lk.DeleteRoomRequest(room="missing"), admin("missing"))
    error = to_api_error(err.value)
    assert (error.code, error.message) == ("not_found", "requested room does not exist")
    assert (error.status, error.grpc_status) == (404, grpc.StatusCode.NOT_FOUND)


async def test_a_missing_room_state_is_unavailable(registry: Registry) -> None:
    method = registry.get(room_service.SERVICE, "ListRooms")
    assert method is not None
    with pytest.raises(Exception) as err:  # nobody serves it; the edge's responder_wait is 0 here
        await method.handler(lk.ListRoomsRequest(), admin())
    error = to_api_error(err.value)
    assert (error.code, error.status, error.grpc_status) == ("unavailable", 503, grpc.StatusCode.UNAVAILABLE)


async def test_twirp_json_round_trip_and_error_body(bus: MemoryBus, edge: Edge, registry: Registry) -> None:
    async def list_rooms(req: lk.ListRoomsRequest) -> lk.ListRoomsResponse:
        return lk.ListRoomsResponse(rooms=[models.Room(name=n, sid="RM_x") for n in req.names])

    await bus.serve(rpcs.LIST_ROOMS, list_rooms)
    await serve_recording(bus, rpcs.DELETE_ROOM, [])
    app = web.Application()
    TwirpHandler(registry, edge.verifier).install(app)
    token = create_token(API_KEY, API_SECRET, admin("missing"))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with TestClient(TestServer(app)) as client:
        ok = await client.post(
            "/twirp/livekit.RoomService/ListRooms", data=json.dumps({"names": ["a"]}), headers=headers
        )
        assert ok.status == 200
        assert [r["name"] for r in (await ok.json())["rooms"]] == ["a"]
        gone = await client.post(
            "/twirp/livekit.RoomService/DeleteRoom", data=json.dumps({"room": "missing"}), headers=headers
        )
        assert gone.status == 404
        assert await gone.json() == {"code": "not_found", "msg": "requested room does not exist", "meta": {}}
