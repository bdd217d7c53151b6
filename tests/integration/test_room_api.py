"""The Room API on the edge, driven by the official livekit-api Python SDK and by raw Twirp JSON.

Participants are admitted through room-state's internal JoinRoom over the bus (what the edge
does for /rtc), with NodeStats heartbeats from the test standing in for a live SFU node; the
test answers that node's RoomCommand subject so it can check what room-state forwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from livekit import api
from livekit.protocol import models

from parley.bus import NatsBus, connect, rpcs, subjects
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.testing import Stack, poll_until

pytestmark = [pytest.mark.integration, pytest.mark.sdk]

NODE = "SFU_roomapi"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=Path(tmp_path_factory.mktemp("room-api")), services=["room-state", "signaling"])
    s.start()
    yield s
    s.stop()


@pytest_asyncio.fixture
async def bus(stack: Stack) -> AsyncIterator[NatsBus]:
    assert stack.nats is not None
    b = await connect(stack.nats.url, "test-room-api")
    yield b
    await b.aclose()


@pytest_asyncio.fixture
async def node_commands(bus: NatsBus) -> AsyncIterator[list[node_pb2.RoomCommand]]:
    """Answer the RoomCommands sent to NODE and keep them."""
    seen: list[node_pb2.RoomCommand] = []

    async def on_command(command: node_pb2.RoomCommand) -> node_pb2.RoomCommandResult:
        seen.append(command)
        return node_pb2.RoomCommandResult()

    sub = await bus.serve(rpcs.ROOM_COMMAND, on_command, topic=NODE, concurrent=False)
    yield seen
    await sub.unsubscribe()


@pytest_asyncio.fixture
async def lkapi(stack: Stack) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    yield client
    await client.aclose()


async def heartbeat(bus: NatsBus) -> None:
    now = int(time.time())
    await bus.publish(subjects.SFU_NODES, node_pb2.NodeStats(node_id=NODE, load=0.1, updated_at=now))


async def join(bus: NatsBus, room: str, identity: str) -> pb.JoinRoomResponse:
    async def attempt() -> pb.JoinRoomResponse | None:
        await heartbeat(bus)
        try:
            req = pb.JoinRoomRequest(room_name=room, participant=models.ParticipantInfo(identity=identity))
            return await bus.call(rpcs.JOIN_ROOM, req, timeout=10)
        except Exception:
            return None

    joined = await poll_until(attempt, timeout=15, message=f"{identity} joins {room}")
    assert joined is not None
    return joined


async def test_every_room_service_method(
    lkapi: api.LiveKitAPI, bus: NatsBus, node_commands: list[node_pb2.RoomCommand]
) -> None:
    room = await lkapi.room.create_room(
        api.CreateRoomRequest(name="sdk-room", empty_timeout=120, max_participants=10, metadata="m0")
    )
    assert room.sid.startswith("RM_") and room.name == "sdk-room"
    assert room.empty_timeout == 120 and room.departure_timeout == 20 and room.max_participants == 10
    assert room.metadata == "m0" and room.creation_time > 0 and room.creation_time_ms > 0
    again = await lkapi.room.create_room(api.CreateRoomRequest(name="sdk-room"))
    assert again.sid == room.sid, "CreateRoom returns the existing room"

    await lkapi.room.create_room(api.CreateRoomRequest(name="sdk-other"))
    listed = await lkapi.room.list_rooms(api.ListRoomsRequest())
    assert {"sdk-room", "sdk-other"} <= {r.name for r in listed.rooms}
    only = await lkapi.room.list_rooms(api.ListRoomsRequest(names=["sdk-room", "nope"]))
    assert [r.sid for r in only.rooms] == [room.sid]

    updated_room = await lkapi.room.update_room_metadata(
        api.UpdateRoomMetadataRequest(room="sdk-room", metadata="m1")
    )
    assert updated_room.metadata == "m1" and updated_room.sid == room.sid

    alice = await join(bus, "sdk-room", "alice")
    await join(bus, "sdk-room", "bob")
    track = models.TrackInfo(sid="TR_alice1", type=models.TrackType.AUDIO, name="mic")
    await bus.call(
        rpcs.TRACK_PUBLISHED,
        pb.TrackPublishedRequest(room_name="sdk-room", participant_sid=alice.participant.sid, track=track),
    )

    people = await lkapi.room.list_participants(api.ListParticipantsRequest(room="sdk-room"))
    assert [p.identity for p in people.participants] == ["alice", "bob"]
    got = await lkapi.room.get_participant(api.RoomParticipantIdentity(room="sdk-room", identity="alice"))
    assert got.sid == alice.participant.sid and got.sid.startswith("PA_")
    assert [t.sid for t in got.tracks] == ["TR_alice1"] and got.joined_at > 0

    changed = await lkapi.room.update_participant(
        api.UpdateParticipantRequest(
            room="sdk-room",
            identity="alice",
            metadata="meta-a",
            name="Alice",
            attributes={"role": "host"},
            permission=models.ParticipantPermission(can_publish=False, can_subscribe=True),
        )
    )
    assert changed.metadata == "meta-a" and changed.name == "Alice"
    assert dict(changed.attributes) == {"role": "host"} and not changed.permission.can_publish
    assert changed.version > got.version

    muted = await lkapi.room.mute_published_track(
        api.MuteRoomTrackRequest(room="sdk-room", identity="alice", track_sid="TR_alice1", muted=True)
    )
    assert muted.track.sid == "TR_alice1" and muted.track.muted

    await lkapi.room.update_subscriptions(
        api.UpdateSubscriptionsRequest(
            room="sdk-room", identity="bob", track_sids=["TR_alice1"], subscribe=True
        )
    )
    await lkapi.room.send_data(
        api.SendDataRequest(room="sdk-room", data=b"hello", kind=models.DataPacket.Kind.RELIABLE, topic="t")
    )
    await lkapi.room.remove_participant(api.RoomParticipantIdentity(room="sdk-room", identity="bob"))
    people = await lkapi.room.list_participants(api.ListParticipantsRequest(room="sdk-room"))
    assert [p.identity for p in people.participants] == ["alice"]

    await lkapi.room.delete_room(api.DeleteRoomRequest(room="sdk-room"))
    listed = await lkapi.room.list_rooms(api.ListRoomsRequest(names=["sdk-room"]))
    assert list(listed.rooms) == []

    kinds = [c.WhichOneof("command") for c in node_commands if c.room_name == "sdk-room"]
    assert kinds == [
        "update_participant",
        "mute_published_track",
        "update_subscriptions",
        "send_data",
        "remove_participant",
        "delete_room",
    ]
    data = next(c.send_data for c in node_commands if c.WhichOneof("command") == "send_data")
    assert data.data == b"hello" and data.topic == "t"


async def test_error_classes(lkapi: api.LiveKitAPI, stack: Stack, bus: NatsBus) -> None:
    # not found
    with pytest.raises(api.TwirpError) as err:
        await lkapi.room.delete_room(api.DeleteRoomRequest(room="missing-room"))
    assert (err.value.code, err.value.status) == ("not_found", 404)
    await lkapi.room.create_room(api.CreateRoomRequest(name="err-room"))
    with pytest.raises(api.TwirpError) as err:
        await lkapi.room.get_participant(api.RoomParticipantIdentity(room="err-room", identity="ghost"))
    assert (err.value.code, err.value.status, err.value.message) == (
        "not_found",
        404,
        "participant does not exist",
    )
    for call in (
        lkapi.room.list_participants(api.ListParticipantsRequest(room="missing-room")),
        lkapi.room.update_room_metadata(api.UpdateRoomMetadataRequest(room="missing-room", metadata="x")),
        lkapi.room.remove_participant(api.RoomParticipantIdentity(room="err-room", identity="ghost")),
        lkapi.room.mute_published_track(
            api.MuteRoomTrackRequest(room="err-room", identity="ghost", track_sid="TR_x", muted=True)
        ),
        lkapi.room.send_data(api.SendDataRequest(room="missing-room", data=b"x")),
    ):
        with pytest.raises(api.TwirpError) as err:
            await call
        assert err.value.code == "not_found"

    # invalid argument: LiveKit's limits
    for bad_call in (
        lkapi.room.create_room(api.CreateRoomRequest(name="r" * 257)),
        lkapi.room.create_room(api.CreateRoomRequest(name="big", metadata="x" * (512 * 1024 + 1))),
        lkapi.room.update_participant(
            api.UpdateParticipantRequest(room="err-room", identity="a", attributes={"k": "v" * (64 * 1024)})
        ),
        lkapi.room.update_room_metadata(
            api.UpdateRoomMetadataRequest(room="err-room", metadata="x" * (512 * 1024 + 1))
        ),
        lkapi.room.get_participant(api.RoomParticipantIdentity(room="err-room", identity="i" * 257)),
    ):
        with pytest.raises(api.TwirpError) as err:
            await bad_call
        assert (err.value.code, err.value.status) == ("invalid_argument", 400)

    # missing grant: a valid token without the grant the method needs
    token = (
        api.AccessToken(stack.api_key, stack.api_secret)
        .with_identity("user")
        .with_grants(api.VideoGrants(room_join=True, room="err-room"))
        .to_jwt()
    )
    client = lkapi.room._client
    for service_method, request, response_type in (
        ("CreateRoom", api.CreateRoomRequest(name="x"), models.Room),
        ("ListRooms", api.ListRoomsRequest(), api.ListRoomsResponse),
        ("DeleteRoom", api.DeleteRoomRequest(room="err-room"), api.DeleteRoomResponse),
        ("ListParticipants", api.ListParticipantsRequest(room="err-room"), api.ListParticipantsResponse),
    ):
        with pytest.raises(api.TwirpError) as err:
            await client.request(
                "RoomService", service_method, request, {"Authorization": f"Bearer {token}"}, response_type
            )
        assert (err.value.code, err.value.status) == ("unauthenticated", 401), service_method
    # roomAdmin for another room is not enough
    other = (
        api.AccessToken(stack.api_key, stack.api_secret)
        .with_grants(api.VideoGrants(room_admin=True, room="another-room"))
        .to_jwt()
    )
    with pytest.raises(api.TwirpError) as err:
        await client.request(
            "RoomService",
            "ListParticipants",
            api.ListParticipantsRequest(room="err-room"),
            {"Authorization": f"Bearer {other}"},
            api.ListParticipantsResponse,
        )
    assert err.value.code == "unauthenticated"

    # bad token: wrong secret, unknown key
    for key, secret in ((stack.api_key, "w" * 40), ("nokey", stack.api_secret)):
        bad = api.LiveKitAPI(stack.http_url, key, secret)
        try:
            with pytest.raises(api.TwirpError) as err:
                await bad.room.list_rooms(api.ListRoomsRequest())
            assert (err.value.code, err.value.status) == ("unauthenticated", 401)
        finally:
            await bad.aclose()


async def test_twirp_json_both_casings_and_error_shape(stack: Stack) -> None:
    token = (
        api.AccessToken(stack.api_key, stack.api_secret)
        .with_grants(api.VideoGrants(room_create=True, room_list=True))
        .to_jwt()
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json;charset=UTF-8"}
    base = f"{stack.http_url}/twirp/livekit.RoomService"
    async with aiohttp.ClientSession() as http:
        body = {"name": "json-room", "emptyTimeout": 33, "max_participants": 4, "unknownField": 1}
        async with http.post(f"{base}/CreateRoom", json=body, headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            room = json.loads(await resp.text())
        assert room["name"] == "json-room" and room["empty_timeout"] == 33 and room["max_participants"] == 4
        assert room["sid"].startswith("RM_") and "num_participants" in room  # snake_case, defaults included
        async with http.post(f"{base}/ListRooms", data=b"{}", headers=headers) as resp:
            assert resp.status == 200
            assert "json-room" in {r["name"] for r in json.loads(await resp.text())["rooms"]}
        async with http.post(f"{base}/DeleteRoom", json={"room": "missing"}, headers=headers) as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"] == "application/json"
            assert json.loads(await resp.text()) == {
                "code": "not_found",
                "msg": "requested room does not exist",
                "meta": {},
            }
        async with http.post(f"{base}/NoSuchMethod", json={}, headers=headers) as resp:
            assert resp.status == 404 and json.loads(await resp.text())["code"] == "bad_route"
        async with http.post(
            f"{base}/ListRooms", json={}, headers={**headers, "Authorization": "Bearer x.y.z"}
        ) as resp:
            assert resp.status == 401 and json.loads(await resp.text())["code"] == "unauthenticated"
        async with http.post(f"{base}/ListRooms", data=b"{not json", headers=headers) as resp:
            assert resp.status == 400 and resp.headers["Content-Type"] == "application/json"
