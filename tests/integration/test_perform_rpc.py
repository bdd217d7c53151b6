"""RoomService.PerformRpc end to end: the livekit-api Twirp client → edge → room-state → SFU →
an ``rpc_request`` data packet to a participant running the official Python SDK, and its
``rpc_ack``/``rpc_response`` back.

livekit-api 1.2.2 has no ``RoomService.perform_rpc`` wrapper yet, so the call goes through the same
SDK's ``TwirpClient`` and token helper that its wrappers use (``_client.request``/``_auth_header``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from livekit import api, rtc
from livekit.protocol import room as lk

from parley.testing import Stack, poll_until

pytestmark = [pytest.mark.integration, pytest.mark.sdk]

ROOM = "rpc-room"
SERVICE = "RoomService"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(
        log_dir=Path(tmp_path_factory.mktemp("perform-rpc")), services=["room-state", "sfu", "signaling"]
    )
    s.start()
    yield s
    s.stop()


@pytest_asyncio.fixture
async def lkapi(stack: Stack) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    yield client
    await client.aclose()


async def perform_rpc(
    lkapi: api.LiveKitAPI, req: lk.PerformRpcRequest, grants: api.VideoGrants | None = None
) -> lk.PerformRpcResponse:
    service = lkapi.room
    header = service._auth_header(grants or api.VideoGrants(room_admin=True, room=req.room))
    response: lk.PerformRpcResponse = await service._client.request(
        SERVICE, "PerformRpc", req, header, lk.PerformRpcResponse
    )
    return response


async def twirp_error(call: object) -> api.TwirpError:
    assert asyncio.iscoroutine(call)
    with pytest.raises(api.TwirpError) as info:
        await call
    return info.value


def join_token(stack: Stack, identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room=ROOM)
    return (
        api.AccessToken(stack.api_key, stack.api_secret).with_identity(identity).with_grants(grants).to_jwt()
    )


async def test_perform_rpc_reaches_an_sdk_participant(stack: Stack, lkapi: api.LiveKitAPI) -> None:
    bob = rtc.Room()
    calls: list[rtc.RpcInvocationData] = []
    refusals: list[str] = []
    await asyncio.wait_for(bob.connect(stack.ws_url, join_token(stack, "bob")), 30)

    async def shout(data: rtc.RpcInvocationData) -> str | None:
        calls.append(data)
        return data.payload.upper()

    async def refuse(data: rtc.RpcInvocationData) -> str | None:
        refusals.append(data.request_id)
        raise rtc.RpcError(2001, "not today", "because")

    async def slow(data: rtc.RpcInvocationData) -> str | None:
        await asyncio.sleep(5)
        return "too late"

    for name, handler in (("shout", shout), ("refuse", refuse), ("slow", slow)):
        bob.local_participant.register_rpc_method(name, handler)

    try:

        async def bob_listed() -> bool:
            listed = await lkapi.room.list_participants(lk.ListParticipantsRequest(room=ROOM))
            return any(p.identity == "bob" for p in listed.participants)

        await poll_until(bob_listed, timeout=15)

        echoed = await perform_rpc(
            lkapi,
            lk.PerformRpcRequest(
                room=ROOM,
                destination_identity="bob",
                method="shout",
                payload="hello",
                response_timeout_ms=8000,
            ),
        )
        assert echoed.payload == "HELLO"
        assert len(calls) == 1 and calls[0].payload == "hello"
        # the server's request id stands in for the caller identity, as in LiveKit
        assert calls[0].caller_identity == calls[0].request_id

        unknown = await twirp_error(
            perform_rpc(lkapi, lk.PerformRpcRequest(room=ROOM, destination_identity="bob", method="nope"))
        )
        assert unknown.code == "invalid_argument", unknown
        assert "1400" in unknown.message, unknown

        refused = await twirp_error(
            perform_rpc(lkapi, lk.PerformRpcRequest(room=ROOM, destination_identity="bob", method="refuse"))
        )
        assert refused.code == "internal", refused
        assert "RpcError 2001: not today: because" in refused.message, refused
        assert len(refusals) == 1, refusals

        late = await twirp_error(
            perform_rpc(
                lkapi,
                lk.PerformRpcRequest(
                    room=ROOM, destination_identity="bob", method="slow", response_timeout_ms=1000
                ),
            )
        )
        assert late.code == "deadline_exceeded", late
        assert "1502" in late.message, late

        missing = await twirp_error(
            perform_rpc(lkapi, lk.PerformRpcRequest(room=ROOM, destination_identity="nobody", method="shout"))
        )
        assert missing.code == "not_found", missing

        # the participant still works after every failure above
        again = await perform_rpc(
            lkapi, lk.PerformRpcRequest(room=ROOM, destination_identity="bob", method="shout", payload="x")
        )
        assert again.payload == "X"
    finally:
        await bob.disconnect()


async def test_perform_rpc_needs_room_admin_and_a_room(lkapi: api.LiveKitAPI) -> None:
    req = lk.PerformRpcRequest(room="rpc-elsewhere", destination_identity="bob", method="shout")
    no_admin = await twirp_error(perform_rpc(lkapi, req, api.VideoGrants(room_list=True, room=req.room)))
    assert no_admin.code == "unauthenticated", no_admin
    other_room = await twirp_error(perform_rpc(lkapi, req, api.VideoGrants(room_admin=True, room="another")))
    assert other_room.code == "unauthenticated", other_room
    no_room = await twirp_error(perform_rpc(lkapi, req))
    assert no_room.code == "not_found", no_room
    no_identity = await twirp_error(
        perform_rpc(lkapi, lk.PerformRpcRequest(room="rpc-elsewhere", method="shout"))
    )
    assert no_identity.code == "invalid_argument", no_identity
