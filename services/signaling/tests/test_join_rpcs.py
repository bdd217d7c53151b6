"""The /rtc join and resume paths' RPC sequences on a MemoryBus, without a socket: JoinRoom then
SessionStart on the node room-state named; LocateParticipant then SessionResume; and each refusal
as the HTTP status the client sees."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from livekit.protocol import models

from parley.bus import ErrorCode, MemoryBus, RpcError, rpcs
from parley.protocol.gen.room.v1 import room_state_pb2 as rs
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.signaling.edge import Edge
from parley.signaling.rtc.errors import RoomNotFound, RtcError, Unavailable
from parley.signaling.rtc.join_request import ConnectParams
from parley.signaling.rtc.resume import resume_session
from parley.signaling.rtc.session_start import join_room, start_session

from .memory_edge import EDGE_ID, admin, memory_edge

pytestmark = pytest.mark.unit

NODE = "NODE_a"


@pytest_asyncio.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    b = MemoryBus("join-unit")
    yield b
    await b.aclose()


@pytest.fixture
def edge(bus: MemoryBus) -> Edge:
    return memory_edge(bus)


async def test_join_asks_room_state_then_starts_the_session_on_its_node(bus: MemoryBus, edge: Edge) -> None:
    joins: list[rs.JoinRoomRequest] = []
    starts: list[relay_pb2.StartSessionRequest] = []

    async def join(req: rs.JoinRoomRequest) -> rs.JoinRoomResponse:
        joins.append(req)
        participant = models.ParticipantInfo(sid="PA_1", identity=req.participant.identity)
        return rs.JoinRoomResponse(
            room=models.Room(name=req.room_name, sid="RM_1"), participant=participant, node_id=NODE
        )

    async def start(req: relay_pb2.StartSessionRequest) -> relay_pb2.StartSessionResponse:
        starts.append(req)
        return relay_pb2.StartSessionResponse()

    await bus.serve(rpcs.JOIN_ROOM, join)
    await bus.serve(rpcs.SESSION_START, start, topic=NODE)
    await bus.serve(rpcs.SESSION_START, start, topic="NODE_other")  # a node room-state did not name
    params = ConnectParams(auto_subscribe=False)

    joined = await join_room(edge, admin("r1"), params, "CO_1")
    await start_session(edge, joined, params, "CO_1")

    [asked] = joins
    assert (asked.room_name, asked.participant.identity, asked.edge_id, asked.connection_id) == (
        "r1",
        "admin",
        EDGE_ID,
        "CO_1",
    )
    assert asked.create_if_missing == edge.config.room.auto_create
    [started] = starts
    assert (started.participant.sid, started.room.sid, started.connection_id, started.edge_id) == (
        "PA_1",
        "RM_1",
        "CO_1",
        EDGE_ID,
    )
    assert started.auto_subscribe is False


@pytest.mark.parametrize(
    ("code", "kind", "status"),
    [
        (ErrorCode.NOT_FOUND, RoomNotFound, 404),
        (ErrorCode.UNAUTHENTICATED, RtcError, 401),
        (ErrorCode.INVALID_ARGUMENT, RtcError, 400),
        (ErrorCode.PERMISSION_DENIED, RtcError, 403),
        (ErrorCode.RESOURCE_EXHAUSTED, RtcError, 429),
        (ErrorCode.FAILED_PRECONDITION, RtcError, 412),
        (ErrorCode.INTERNAL, RtcError, 503),
        (ErrorCode.DEADLINE_EXCEEDED, RtcError, 503),
    ],
)
async def test_a_refused_join_is_the_status_the_client_sees(
    bus: MemoryBus, edge: Edge, code: ErrorCode, kind: type[RtcError], status: int
) -> None:
    async def refuse(req: rs.JoinRoomRequest) -> rs.JoinRoomResponse:
        raise RpcError(code, "refused")

    await bus.serve(rpcs.JOIN_ROOM, refuse)
    with pytest.raises(kind) as err:
        await join_room(edge, admin("r1"), ConnectParams(), "CO_1")
    assert err.value.status == status


async def test_nobody_to_join_or_to_start_is_unavailable(bus: MemoryBus, edge: Edge) -> None:
    with pytest.raises(Unavailable):
        await join_room(edge, admin("r1"), ConnectParams(), "CO_1")
    gone = rs.JoinRoomResponse(participant=models.ParticipantInfo(sid="PA_1"), node_id="NODE_gone")
    with pytest.raises(Unavailable):
        await start_session(edge, gone, ConnectParams(), "CO_1")


async def test_resume_locates_the_session_then_rebinds_it_on_that_node(bus: MemoryBus, edge: Edge) -> None:
    resumed: list[relay_pb2.ResumeSessionRequest] = []

    async def locate(req: rs.LocateParticipantRequest) -> rs.LocateParticipantResponse:
        if req.participant_sid != "PA_1" or req.identity != "admin":
            raise RpcError(ErrorCode.NOT_FOUND, "no such session")
        return rs.LocateParticipantResponse(node_id=NODE)

    async def resume(req: relay_pb2.ResumeSessionRequest) -> relay_pb2.ResumeSessionResponse:
        resumed.append(req)
        return relay_pb2.ResumeSessionResponse()

    await bus.serve(rpcs.LOCATE_PARTICIPANT, locate)
    await bus.serve(rpcs.SESSION_RESUME, resume, topic=NODE)
    found = await resume_session(
        edge, admin("r1"), ConnectParams(reconnect=True, participant_sid="PA_1"), "CO_2"
    )
    assert found.node_id == NODE
    assert [(r.participant_sid, r.connection_id, r.room_name) for r in resumed] == [("PA_1", "CO_2", "r1")]
    with pytest.raises(RoomNotFound):  # NOT_FOUND: the caller sends leave{RECONNECT}
        await resume_session(edge, admin("r1"), ConnectParams(reconnect=True, participant_sid="PA_9"), "CO_3")
