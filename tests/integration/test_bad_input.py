"""Bad input at the edge (issue 13, hardening): every case gets a clear answer, the session (or the
next join) carries on, no secret reaches a log and a room's teardown logs no writer crash.

Raw WebSocket clients speak the LiveKit protobuf protocol, as in test_rtc_edge.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from livekit.protocol import models, rtc

from parley.auth import Claims, VideoGrant, create_token
from parley.testing import Stack, TcpProxy, poll_until

pytestmark = pytest.mark.integration

SERVICES = ["room-state", "sfu", "signaling"]
QUERY = "sdk=python&protocol=17&client_protocol=2&auto_subscribe=1"
Reason = rtc.RequestResponse.Reason


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(log_dir=tmp_path_factory.mktemp("bad-input-stack"), services=SERVICES).start()
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


def admin_token(stack: Stack) -> str:
    video = VideoGrant(room_create=True, room_list=True, room_admin=True)
    return create_token(stack.api_key, stack.api_secret, Claims(identity="admin", video=video))


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
        while (msg := await asyncio.wait_for(self.ws.receive(), timeout)).type not in closing:
            pass
        self.last_close_reason = str(msg.extra or "")
        return self.ws.close_code

    async def send(self, request: rtc.SignalRequest) -> None:
        await self.ws.send_bytes(request.SerializeToString())

    async def alive(self) -> None:
        """The session still answers."""
        stamp = int(time.time() * 1000)
        await self.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=stamp)))
        assert (await self.until("pong_resp")).pong_resp.last_ping_timestamp == stamp


async def join(http: aiohttp.ClientSession, stack: Stack, tok: str) -> RawClient:
    ws = await http.ws_connect(
        f"{stack.ws_url}/rtc?{QUERY}", headers={"Authorization": f"Bearer {tok}"}, max_msg_size=0
    )
    client = RawClient(ws)
    assert (await client.recv()).WhichOneof("message") == "join"
    return client


async def a_normal_join_works(http: aiohttp.ClientSession, stack: Stack, room: str) -> None:
    newcomer = await join(http, stack, token(stack, f"n-{uuid.uuid4().hex[:6]}", room))
    await newcomer.alive()
    await newcomer.ws.close()


async def test_v1_join_request_must_be_strict_base64url(stack: Stack, http: aiohttp.ClientSession) -> None:
    """Characters outside base64url are refused with 400 before the upgrade (they used to be
    dropped, and what was left decoded to an empty, valid join request)."""
    room = f"b64-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {token(stack, 'v1', room)}"}
    valid = base64.urlsafe_b64encode(
        rtc.WrappedJoinRequest(join_request=rtc.JoinRequest().SerializeToString()).SerializeToString()
    ).decode()
    for value in ("!!!%%%***", "CAA*", "CA=A", "A", f"{valid}!", "a+b/"):
        url = f"{stack.ws_url}/rtc/v1?join_request={value}"
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(url, headers=headers)
        assert info.value.status == 400, value
        async with http.get(url.replace("ws", "http", 1), headers={**headers, "Upgrade": "websocket"}) as r:
            assert r.status == 400 and "join_request" in await r.text()
    await a_normal_join_works(http, stack, room)


async def test_twirp_body_over_the_limit_is_413_malformed(stack: Stack, http: aiohttp.ClientSession) -> None:
    url = f"{stack.http_url}/twirp/livekit.RoomService/ListRooms"
    headers = {"Authorization": f"Bearer {admin_token(stack)}", "Content-Type": "application/json"}
    body = json.dumps({"names": ["x" * (12 * 1024 * 1024)]}).encode()
    async with http.post(url, data=body, headers=headers) as resp:
        assert resp.status == 413
        error = await resp.json()
    assert error["code"] == "malformed" and "request too large" in error["msg"], error

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit hits while reading
        for i in range(0, len(body), 1 << 20):
            yield body[i : i + (1 << 20)]

    async with http.post(url, data=chunks(), headers=headers) as resp:
        assert resp.status == 413
        assert (await resp.json())["code"] == "malformed"
    async with http.post(url, data=b"{}", headers=headers) as resp:
        assert resp.status == 200
    assert "HTTPRequestEntityTooLarge" not in stack.log("signaling")


async def test_bad_requests_after_join_get_an_answer(stack: Stack, http: aiohttp.ClientSession) -> None:
    room = f"rq-{uuid.uuid4().hex[:6]}"
    client = await join(http, stack, token(stack, "offender", room, can_update_own_metadata=True))

    # a trickle with a garbage candidate, and one that is not JSON: UNCLASSIFIED_ERROR (LiveKit)
    for init in (
        json.dumps({"candidate": "candidate:garbage", "sdpMid": "0", "sdpMLineIndex": 0}),
        "{not json",
    ):
        trickle = rtc.TrickleRequest(candidateInit=init, target=rtc.SignalTarget.SUBSCRIBER)
        await client.send(rtc.SignalRequest(trickle=trickle))
        answer = (await client.until("request_response")).request_response
        assert answer.reason == Reason.UNCLASSIFIED_ERROR and answer.message, answer
        assert answer.trickle.candidateInit == init
        await a_normal_join_works(http, stack, room)
    # an empty candidate is the end of candidates, not an error
    end = rtc.TrickleRequest(candidateInit=json.dumps({"candidate": ""}), target=rtc.SignalTarget.SUBSCRIBER)
    await client.send(rtc.SignalRequest(trickle=end))
    await client.alive()

    # add_track with a 1 MB name: LIMIT_EXCEEDED from the edge (the relay could not carry it)
    big = rtc.AddTrackRequest(cid="big", name="n" * (1024 * 1024), type=models.TrackType.AUDIO)
    await client.send(rtc.SignalRequest(add_track=big))
    answer = (await client.until("request_response")).request_response
    assert answer.reason == Reason.LIMIT_EXCEEDED and "name" in answer.message
    assert answer.add_track.cid == "big" and not answer.add_track.name
    await a_normal_join_works(http, stack, room)

    # add_track with an unknown track type: UNSUPPORTED_TYPE
    for track_type in (models.TrackType.DATA, 17):
        odd = rtc.AddTrackRequest(cid=f"odd{track_type}", name="x", type=track_type)  # type: ignore[arg-type]
        await client.send(rtc.SignalRequest(add_track=odd))
        answer = (await client.until("request_response")).request_response
        assert answer.reason == Reason.UNSUPPORTED_TYPE and answer.add_track.cid == f"odd{track_type}"
        await a_normal_join_works(http, stack, room)

    # update_metadata of 1.5 MB, a 300-byte name, 65 KiB of attributes: LIMIT_EXCEEDED with the request_id
    for request_id, update, word in (
        (41, rtc.UpdateParticipantMetadata(metadata="m" * (1536 * 1024)), "metadata"),
        (42, rtc.UpdateParticipantMetadata(name="n" * 300), "name"),
        (43, rtc.UpdateParticipantMetadata(attributes={"a": "v" * (65 * 1024)}), "attributes"),
    ):
        update.request_id = request_id
        await client.send(rtc.SignalRequest(update_metadata=update))
        answer = (await client.until("request_response")).request_response
        assert answer.request_id == request_id and answer.reason == Reason.LIMIT_EXCEEDED, answer
        assert word in answer.message
        await a_normal_join_works(http, stack, room)
    # within the limits it still works
    await client.send(
        rtc.SignalRequest(update_metadata=rtc.UpdateParticipantMetadata(metadata="ok", request_id=44))
    )
    answer = (await client.until("request_response")).request_response
    assert answer.request_id == 44 and answer.reason == Reason.OK

    # any other request too large for the relay closes with 1009 and a reason
    huge = await join(http, stack, token(stack, "huge", room))
    offer = rtc.SessionDescription(type="offer", sdp="v=0\r\n" + "a=x\r\n" * 220_000, id=1)
    await huge.send(rtc.SignalRequest(offer=offer))
    assert await huge.close_code() == 1009
    assert "too large" in huge.last_close_reason
    await client.alive()
    await a_normal_join_works(http, stack, room)
    await client.ws.close()


async def test_empty_frames_a_few_ignored_a_burst_closes(stack: Stack, http: aiohttp.ClientSession) -> None:
    room = f"empty-{uuid.uuid4().hex[:6]}"
    calm = await join(http, stack, token(stack, "calm", room))
    for _ in range(5):
        await calm.ws.send_bytes(b"")
    await calm.alive()

    abusive = await join(http, stack, token(stack, "abusive", room))
    for _ in range(200):
        await abusive.ws.send_bytes(b"")
    assert await abusive.close_code() == 1008
    assert "empty frames" in abusive.last_close_reason
    await calm.alive()
    await a_normal_join_works(http, stack, room)
    await calm.ws.close()
    log = stack.log("signaling")
    assert log.count("empty client frame ignored") == 0  # debug level: no line per frame
    assert "too many empty frames" in log


async def test_no_token_or_secret_in_any_log(stack: Stack, http: aiohttp.ClientSession) -> None:
    room = f"secret-{uuid.uuid4().hex[:6]}"
    tok = token(stack, "secretive", room)
    marker = uuid.uuid4().hex
    # an over-long request line carrying the token (aiohttp logs the line in its error)
    async with http.get(f"{stack.http_url}/rtc?access_token={tok}&pad={marker}{'p' * 9000}") as resp:
        assert resp.status in (400, 414)
    # an over-long header next to an Authorization header
    async with http.get(
        f"{stack.http_url}/rtc/validate",
        headers={"Authorization": f"Bearer {tok}", "X-Pad": marker + "h" * 9000},
    ) as resp:
        assert resp.status in (400, 431)
    # bad join_request and bad frames with the token in the query string
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await http.ws_connect(f"{stack.ws_url}/rtc/v1?access_token={tok}&join_request=!!!")
    ws = await http.ws_connect(f"{stack.ws_url}/rtc?{QUERY}&access_token={tok}")
    client = RawClient(ws)
    assert (await client.recv()).WhichOneof("message") == "join"
    await ws.send_bytes(b"\xff\xfe garbage")
    assert await client.close_code() == 1007
    # a Twirp call with the token and a body that is not JSON
    async with http.post(
        f"{stack.http_url}/twirp/livekit.RoomService/ListRooms",
        data=b"{" + tok.encode(),
        headers={"Authorization": f"Bearer {tok}", "Content-Type": "application/json"},
    ) as resp:
        assert resp.status >= 400
    await poll_until(lambda: marker in stack.log("signaling"), message="the over-long line is logged")
    await poll_until(lambda: "bad client frame" in stack.log("signaling"), message="the bad frame is logged")
    for service in SERVICES:
        log = stack.log(service)
        assert tok not in log, service
        assert tok.split(".")[1] not in log, service  # not even the claims
        assert stack.api_secret not in log, service
    log = stack.log("signaling")
    assert "[redacted]" in log
    # a malformed request is the client's error: one info line, no error with a traceback
    assert "bad HTTP request refused" in log and "Error handling request" not in log


async def test_room_teardown_logs_no_writer_crash(stack: Stack, http: aiohttp.ClientSession) -> None:
    """Connections that drop while the edge still writes to them (the room is deleted, the clients
    vanish): a write to a closing socket is the writer's normal end, not a crashed task."""
    room = f"teardown-{uuid.uuid4().hex[:6]}"
    proxy = await TcpProxy(stack.edge(0).port).start()
    try:
        clients = []
        for i in range(4):
            ws = await http.ws_connect(
                f"ws://127.0.0.1:{proxy.port}/rtc?{QUERY}",
                headers={"Authorization": f"Bearer {token(stack, f'p{i}', room)}"},
            )
            clients.append(RawClient(ws))
            assert (await clients[-1].recv()).WhichOneof("message") == "join"
        # each client asks for many answers; the room is deleted and, as soon as the first leave
        # arrives, every connection drops at once while the edge still has frames to write
        for c in clients:
            for n in range(300):
                await c.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=n)))
        async with http.post(
            f"{stack.http_url}/twirp/livekit.RoomService/DeleteRoom",
            json={"room": room},
            headers={"Authorization": f"Bearer {admin_token(stack)}"},
        ) as resp:
            assert resp.status == 200, await resp.text()
        await clients[0].until("leave")
        assert proxy.cut() == 4
    finally:
        await proxy.aclose()

    def ended() -> int:
        lines = stack.log("signaling").splitlines()
        return sum(1 for line in lines if "connection ended" in line and room in line)

    await poll_until(lambda: ended() >= 4, message="the room's four connections ended")
    log = stack.log("signaling")
    assert "crashed" not in log and "Cannot write to closing transport" not in log
