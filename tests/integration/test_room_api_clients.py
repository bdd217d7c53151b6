"""The Room API from other official clients: the Node livekit-server-sdk over JSON Twirp, and a gRPC
client built only from the server's reflection (no stubs, no .proto files)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from livekit import api

from parley.testing import Stack

pytestmark = [pytest.mark.integration, pytest.mark.sdk]

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=Path(tmp_path_factory.mktemp("room-api-clients")), services=["room-state", "signaling"])
    s.start()
    yield s
    s.stop()


async def test_node_server_sdk_over_json_twirp(stack: Stack) -> None:
    node = shutil.which("node")
    assert node, "node is required (make test installs it)"
    assert (NODE_DIR / "node_modules" / "livekit-server-sdk").exists(), "run npm ci in tests/node"
    env = {
        **os.environ,
        "LIVEKIT_URL": stack.http_url,
        "LIVEKIT_API_KEY": stack.api_key,
        "LIVEKIT_API_SECRET": stack.api_secret,
    }
    proc = await asyncio.create_subprocess_exec(
        node,
        "room_api.mjs",
        "node-room",
        cwd=NODE_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, f"{out.decode()}\n{err.decode()}"
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["ok"] and result["sid"].startswith("RM_")
    assert result["notFound"] == {"status": 404, "code": "not_found"}


def _call(
    channel: grpc.Channel,
    pool: descriptor_pool.DescriptorPool,
    method: str,
    token: str,
    body: dict[str, object],
) -> object:
    service = pool.FindServiceByName("livekit.RoomService")
    descriptor = service.FindMethodByName(method)
    request_class = message_factory.GetMessageClass(descriptor.input_type)
    response_class = message_factory.GetMessageClass(descriptor.output_type)
    stub = channel.unary_unary(
        f"/livekit.RoomService/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    return stub(request_class(**body), metadata=[("authorization", f"Bearer {token}")], timeout=10)


def test_grpc_client_from_reflection(stack: Stack) -> None:
    token = (
        api.AccessToken(stack.api_key, stack.api_secret)
        .with_grants(api.VideoGrants(room_create=True, room_list=True))
        .to_jwt()
    )
    with grpc.insecure_channel(stack.grpc_target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {
            "livekit.RoomService",
            "livekit.AgentDispatchService",
        } <= services or "livekit.RoomService" in services
        pool = descriptor_pool.DescriptorPool(database)
        room = _call(
            channel, pool, "CreateRoom", token, {"name": "grpc-room", "empty_timeout": 45, "metadata": "g"}
        )
        assert room.sid.startswith("RM_") and room.name == "grpc-room" and room.empty_timeout == 45  # type: ignore[attr-defined]
        again = _call(channel, pool, "CreateRoom", token, {"name": "grpc-room"})
        assert again.sid == room.sid  # type: ignore[attr-defined]
        listed = _call(channel, pool, "ListRooms", token, {"names": ["grpc-room"]})
        assert [r.sid for r in listed.rooms] == [room.sid]  # type: ignore[attr-defined]

        with pytest.raises(grpc.RpcError) as err:
            _call(channel, pool, "DeleteRoom", token, {"room": "missing"})
        assert err.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
        with pytest.raises(grpc.RpcError) as err:
            _call(channel, pool, "ListRooms", "not-a-token", {})
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        with pytest.raises(grpc.RpcError) as err:
            _call(channel, pool, "CreateRoom", token, {"name": "x" * 300})
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
