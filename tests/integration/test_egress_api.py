"""livekit.Egress on a real stack with no egress worker (nats-server, Valkey, room-state, the egress
controller, the edge) through the official livekit-api EgressService over Twirp and gRPC: what LiveKit
answers with no egress instance (StartTrackEgress: unavailable "no response from servers"), the
roomRecord grant and an empty ListEgress. Recording with workers: ``test_egress_track.py`` and
``test_egress_crash.py``."""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp
import grpc
import pytest
from livekit import api
from livekit.protocol import egress as lk

from parley.testing import Stack

pytestmark = [pytest.mark.integration, pytest.mark.sdk]


async def test_egress_api_without_workers(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(services=["room-state", "egress", "signaling"])
    lkapi = api.LiveKitAPI(stack.http_url, stack.api_key, stack.api_secret)
    try:
        # a token without roomRecord (roomAdmin on the room is not enough): unauthenticated
        token = (
            api.AccessToken(stack.api_key, stack.api_secret)
            .with_grants(api.VideoGrants(room_admin=True, room="rec"))
            .to_jwt()
        )
        async with aiohttp.ClientSession() as http:
            refused = await http.post(
                f"{stack.http_url}/twirp/livekit.Egress/ListEgress",
                data=json.dumps({"roomName": "rec"}),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            assert refused.status == 401
            assert await refused.json() == {
                "code": "unauthenticated",
                "msg": "permissions denied",
                "meta": {},
            }

        listed = await lkapi.egress.list_egress(api.ListEgressRequest())
        assert list(listed.items) == []

        # an unknown room: room-state's not_found, as LiveKit loads the room first
        with pytest.raises(api.TwirpError) as unknown:
            await lkapi.egress.start_track_egress(api.TrackEgressRequest(room_name="nope", track_id="TR_x"))
        assert (unknown.value.code, unknown.value.message) == ("not_found", "requested room does not exist")

        await lkapi.room.create_room(api.CreateRoomRequest(name="rec"))
        request = api.TrackEgressRequest(
            room_name="rec", track_id="TR_x", file=api.DirectFileOutput(filepath="rec/{track_id}.ogg")
        )
        with pytest.raises(api.TwirpError) as none:
            await lkapi.egress.start_track_egress(request)
        assert (none.value.code, none.value.message, none.value.status) == (
            "unavailable",
            "no response from servers",
            503,
        )
        assert list((await lkapi.egress.list_egress(api.ListEgressRequest(room_name="rec"))).items) == []

        with pytest.raises(api.TwirpError) as missing:
            await lkapi.egress.stop_egress(api.StopEgressRequest(egress_id="EG_nope"))
        assert (missing.value.code, missing.value.message) == ("not_found", "egress does not exist")

        # the same methods over gRPC (livekit.Egress on signaling.grpc_port)
        recorder = api.AccessToken(stack.api_key, stack.api_secret).with_grants(
            api.VideoGrants(room_record=True)
        )
        async with grpc.aio.insecure_channel(stack.grpc_target) as channel:
            list_egress = channel.unary_unary(
                "/livekit.Egress/ListEgress",
                request_serializer=lk.ListEgressRequest.SerializeToString,
                response_deserializer=lk.ListEgressResponse.FromString,
            )
            metadata = (("authorization", f"Bearer {recorder.to_jwt()}"),)
            assert list((await list_egress(lk.ListEgressRequest(), metadata=metadata)).items) == []
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await list_egress(lk.ListEgressRequest(), metadata=(("authorization", f"Bearer {token}"),))
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await lkapi.aclose()
