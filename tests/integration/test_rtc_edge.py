"""/rtc and /rtc/v1 at the wire level: validation before the upgrade, keepalives, refresh, resume, duplicate
identity and bad input. A raw WebSocket client speaks the LiveKit protobuf protocol."""

from __future__ import annotations

import asyncio
import base64
import gzip
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiortc import RTCConfiguration, RTCPeerConnection
from livekit.protocol import models, rtc

from parley.auth import Claims, VideoGrant, create_token
from parley.testing import Stack, poll_until

pytestmark = pytest.mark.integration

SERVICES = ["room-state", "sfu", "signaling"]
QUERY = "sdk=python&protocol=17&client_protocol=2&auto_subscribe=1"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=tmp_path_factory.mktemp("rtc-stack"), services=SERVICES).start()
    yield s
    s.stop()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def token(stack: Stack, identity: str = "alice", room: str = "", **grant: Any) -> str:
    grant.setdefault("room_join", True)
    video = VideoGrant(room=room or f"r-{uuid.uuid4().hex[:8]}", **grant)
    return create_token(stack.api_key, stack.api_secret, Claims(identity=identity, video=video))


class RawClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def recv(self, timeout: float = 10.0) -> rtc.SignalResponse:
        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        assert msg.type == aiohttp.WSMsgType.BINARY, f"expected a frame, got {msg.type} {msg.data!r}"
        response = rtc.SignalResponse()
        response.ParseFromString(msg.data)
        return response

    async def until(self, kind: str, timeout: float = 10.0) -> rtc.SignalResponse:
        deadline = time.monotonic() + timeout
        while True:
            response = await self.recv(max(0.1, deadline - time.monotonic()))
            if response.WhichOneof("message") == kind:
                return response

    async def close_code(self, timeout: float = 10.0) -> int | None:
        """Read (and drop) frames until the server closes; its close code."""
        closing = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        while (await asyncio.wait_for(self.ws.receive(), timeout)).type not in closing:
            pass
        return self.ws.close_code

    async def send(self, request: rtc.SignalRequest) -> None:
        await self.ws.send_bytes(request.SerializeToString())


def join_request(offer_sdp: str | None, *, gzip_it: bool = True, offer_id: int = 0) -> str:
    """The v1 ``join_request`` query value: base64url(WrappedJoinRequest{GZIP|NONE, JoinRequest})."""
    request = rtc.JoinRequest(
        client_info=models.ClientInfo(sdk=models.ClientInfo.SDK.PYTHON, protocol=18, client_protocol=2),
        connection_settings=rtc.ConnectionSettings(auto_subscribe=True),
    )
    if offer_sdp is not None:
        request.publisher_offer.CopyFrom(rtc.SessionDescription(type="offer", sdp=offer_sdp, id=offer_id))
    payload = request.SerializeToString()
    wrapped = rtc.WrappedJoinRequest(
        compression=rtc.WrappedJoinRequest.Compression.GZIP
        if gzip_it
        else rtc.WrappedJoinRequest.Compression.NONE,
        join_request=gzip.compress(payload) if gzip_it else payload,
    )
    return base64.urlsafe_b64encode(wrapped.SerializeToString()).decode().rstrip("=")


async def join(http: aiohttp.ClientSession, stack: Stack, tok: str, query: str = QUERY) -> RawClient:
    ws = await http.ws_connect(
        f"{stack.ws_url}/rtc?{query}", headers={"Authorization": f"Bearer {tok}"}, max_msg_size=0
    )
    return RawClient(ws)


async def test_refusals_before_upgrade(stack: Stack, http: aiohttp.ClientSession) -> None:
    bad = create_token(
        stack.api_key, "x" * 40, Claims(identity="a", video=VideoGrant(room_join=True, room="r"))
    )
    cases = [
        ({"Authorization": f"Bearer {bad}"}, 401),
        ({"Authorization": f"Bearer {token(stack, room_join=False)}"}, 401),
        ({"Authorization": f"Bearer {token(stack, identity='')}"}, 400),
        ({"Authorization": f"Bearer {token(stack, identity='i' * 257)}"}, 400),
        ({"Authorization": f"Bearer {token(stack, room='r' * 257)}"}, 400),
        ({}, 401),
    ]
    for headers, status in cases:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(f"{stack.ws_url}/rtc?{QUERY}", headers=headers)
        assert info.value.status == status
        async with http.get(f"{stack.http_url}/rtc/validate", headers=headers) as resp:
            assert resp.status == status
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
    async with http.get(f"{stack.http_url}/rtc/validate?access_token={token(stack)}") as resp:
        assert resp.status == 200 and await resp.text() == "success"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
    # /rtc/v1/validate answers like /rtc/validate
    async with http.get(f"{stack.http_url}/rtc/v1/validate?access_token={token(stack)}") as resp:
        assert resp.status == 200 and await resp.text() == "success"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
    async with http.get(
        f"{stack.http_url}/rtc/v1/validate", headers={"Authorization": f"Bearer {bad}"}
    ) as resp:
        assert resp.status == 401
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
    # /rtc/v1 refuses a bad token, and a missing or undecodable join_request, before the upgrade
    good = {"Authorization": f"Bearer {token(stack)}"}
    for url, headers, status in (
        (f"{stack.ws_url}/rtc/v1?join_request={join_request(None)}", {"Authorization": f"Bearer {bad}"}, 401),
        (f"{stack.ws_url}/rtc/v1?join_request=x", good, 400),
        (f"{stack.ws_url}/rtc/v1", good, 400),
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(url, headers=headers)
        assert info.value.status == status


async def test_join_keepalive_refresh_and_resume(stack: Stack, http: aiohttp.ClientSession) -> None:
    room = f"resume-{uuid.uuid4().hex[:6]}"
    client = await join(http, stack, token(stack, room=room))
    first = await client.recv()
    assert first.WhichOneof("message") == "join"
    j = first.join
    assert j.room.sid.startswith("RM_") and j.participant.sid.startswith("PA_")
    assert j.participant.permission.can_publish and j.ping_interval == 5 and j.ping_timeout == 15
    assert j.server_info.agent_protocol == 1 and j.server_version >= "1.8.0"
    assert j.subscriber_primary and j.fast_publish
    # the node keeps sessions through signalling drops (sfu.resume_window): clients may resume
    assert j.client_configuration.resume_connection == models.ClientConfigSetting.UNSET
    # the edge sends refresh_token and the SFU the subscriber offer: either may come first
    seen: dict[str, rtc.SignalResponse] = {}
    deadline = time.monotonic() + 10
    while not {"refresh_token", "offer"} <= seen.keys():
        response = await client.recv(max(0.1, deadline - time.monotonic()))
        seen.setdefault(str(response.WhichOneof("message")), response)
    assert seen["refresh_token"].refresh_token.count(".") == 2
    offer = seen["offer"]
    assert "m=application" in offer.offer.sdp and offer.offer.id >= 1
    await client.send(rtc.SignalRequest(ping=1234))
    assert (await client.until("pong")).pong > 0
    await client.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=42, rtt=1)))
    assert (await client.until("pong_resp")).pong_resp.last_ping_timestamp == 42
    # a resume of an unknown session is refused with a full-rejoin leave as the first frame
    unknown = await join(
        http, stack, token(stack, room=room), query=f"{QUERY}&reconnect=1&sid=PA_nosuchsession"
    )
    leave = await unknown.recv()
    assert leave.WhichOneof("message") == "leave"
    assert leave.leave.reason == models.DisconnectReason.STATE_MISMATCH
    assert leave.leave.action == rtc.LeaveRequest.Action.RECONNECT
    # another identity cannot take the session over
    thief = await join(
        http, stack, token(stack, "thief", room), query=f"{QUERY}&reconnect=1&sid={j.participant.sid}"
    )
    assert (await thief.recv()).WhichOneof("message") == "leave"
    # the session's own resume gets a ReconnectResponse first, then everyone's state; the
    # connection it replaces is closed
    resume = await join(
        http, stack, token(stack, room=room), query=f"{QUERY}&reconnect=1&sid={j.participant.sid}"
    )
    reconnect = await resume.recv()
    assert reconnect.WhichOneof("message") == "reconnect", reconnect
    assert reconnect.reconnect.server_info.node_id == j.server_info.node_id
    update = await resume.until("update")
    assert [p.sid for p in update.update.participants] == [j.participant.sid]
    assert await client.close_code() is not None  # the replaced connection was closed
    await resume.send(rtc.SignalRequest(ping=99))
    assert (await resume.until("pong")).pong > 0
    await resume.ws.close()


async def test_duplicate_identity_kicks_the_older_session(stack: Stack, http: aiohttp.ClientSession) -> None:
    room = f"dup-{uuid.uuid4().hex[:6]}"
    old = await join(http, stack, token(stack, "same", room))
    assert (await old.recv()).WhichOneof("message") == "join"
    new = await join(http, stack, token(stack, "same", room))
    assert (await new.recv()).WhichOneof("message") == "join"
    leave = await old.until("leave")
    assert leave.leave.reason == models.DisconnectReason.DUPLICATE_IDENTITY
    await new.ws.close()


async def test_bad_input_hurts_only_the_offender(stack: Stack, http: aiohttp.ClientSession) -> None:
    room = f"bad-{uuid.uuid4().hex[:6]}"
    bystander = await join(http, stack, token(stack, "bystander", room))
    assert (await bystander.recv()).WhichOneof("message") == "join"

    # garbage and truncated protobuf: closed with 1007 and a reason
    for payload in (
        b"\xff\xfe\xfd garbage",
        rtc.SignalRequest(ping=5).SerializeToString()[:-1] + b"\x0a\x05ab",
    ):
        offender = await join(http, stack, token(stack, f"g-{uuid.uuid4().hex[:4]}", room))
        assert (await offender.recv()).WhichOneof("message") == "join"
        await offender.ws.send_bytes(payload)
        assert await offender.close_code() == 1007

    # an oversized frame: closed with 1009 (message too big)
    big = await join(http, stack, token(stack, "big", room))
    assert (await big.recv()).WhichOneof("message") == "join"
    await big.ws.send_bytes(b"\x00" * (2 * 1024 * 1024 + 10))
    # the edge closes with 1009 as soon as the header announces the size; the client may still be
    # writing the rest, so the TCP reset can beat the close frame (then the client sees 1006)
    assert await big.close_code() in (1009, 1006)
    await poll_until(lambda: "exceeds limit 2097152" in stack.log("signaling"), message="size refusal logged")

    # publish without permission, unknown track ids, metadata without permission
    limited = await join(http, stack, token(stack, "limited", room, can_publish=False))
    assert (await limited.recv()).WhichOneof("message") == "join"
    await limited.send(
        rtc.SignalRequest(add_track=rtc.AddTrackRequest(cid="c1", name="mic", type=models.TrackType.AUDIO))
    )
    refused = await limited.until("request_response")
    assert refused.request_response.reason == rtc.RequestResponse.Reason.NOT_ALLOWED
    await limited.send(rtc.SignalRequest(mute=rtc.MuteTrackRequest(sid="TR_doesnotexist", muted=True)))
    await limited.send(
        rtc.SignalRequest(subscription=rtc.UpdateSubscription(track_sids=["TR_nope"], subscribe=True))
    )
    await limited.send(
        rtc.SignalRequest(update_metadata=rtc.UpdateParticipantMetadata(metadata="m", request_id=7))
    )
    denied = await limited.until("request_response")
    assert denied.request_response.request_id == 7
    assert denied.request_response.reason == rtc.RequestResponse.Reason.NOT_ALLOWED

    # an SDP without media: the offender gets a leave
    nomedia = await join(http, stack, token(stack, "nomedia", room))
    assert (await nomedia.recv()).WhichOneof("message") == "join"
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    await nomedia.send(rtc.SignalRequest(offer=rtc.SessionDescription(type="offer", sdp=sdp, id=1)))
    leave = await nomedia.until("leave")
    assert leave.leave.action == rtc.LeaveRequest.Action.DISCONNECT

    # the bystander still gets answers, and a newcomer still joins
    await bystander.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=9)))
    assert (await bystander.until("pong_resp")).pong_resp.last_ping_timestamp == 9
    newcomer = await join(http, stack, token(stack, "newcomer", room))
    j = await newcomer.recv()
    assert j.WhichOneof("message") == "join"
    assert "bystander" in {p.identity for p in j.join.other_participants}
    await bystander.ws.close()
    await newcomer.ws.close()


async def test_v1_join_answers_the_offer_from_the_join_request(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """/rtc/v1: join first, then the answer to the client's offer (same id); the client's recvonly
    m-lines stay inactive while there is nothing to receive. Rust style (gzip, Authorization header)
    and JS style (no compression, access_token query); an offer without media gets a leave."""
    room = f"v1-{uuid.uuid4().hex[:6]}"
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        pc.createDataChannel("_reliable")
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
    finally:
        await pc.close()
    rust = RawClient(
        await http.ws_connect(
            f"{stack.ws_url}/rtc/v1?join_request={join_request(offer, offer_id=0)}",
            headers={"Authorization": f"Bearer {token(stack, 'rust', room)}"},
        )
    )
    js = RawClient(
        await http.ws_connect(
            f"{stack.ws_url}/rtc/v1?access_token={token(stack, 'js', room)}"
            f"&join_request={join_request(offer, gzip_it=False, offer_id=4)}"
        )
    )
    for client, offer_id in ((rust, 0), (js, 4)):
        first = await client.recv()
        assert first.WhichOneof("message") == "join"
        assert not first.join.subscriber_primary and first.join.fast_publish
        answer = (await client.until("answer")).answer
        assert answer.type == "answer" and answer.id == offer_id
        assert "m=application" in answer.sdp and "a=inactive" in answer.sdp
        assert dict(answer.mid_to_track_id) == {}
    sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    nomedia = RawClient(
        await http.ws_connect(
            f"{stack.ws_url}/rtc/v1?join_request={join_request(sdp)}",
            headers={"Authorization": f"Bearer {token(stack, 'nomedia', room)}"},
        )
    )
    assert (await nomedia.recv()).WhichOneof("message") == "join"
    assert (await nomedia.until("leave")).leave.action == rtc.LeaveRequest.Action.DISCONNECT
    # the others carry on
    await rust.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=11)))
    assert (await rust.until("pong_resp")).pong_resp.last_ping_timestamp == 11
    await rust.ws.close()
    await js.ws.close()
