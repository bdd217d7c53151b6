"""RoomCommand.tap in a room (``taps.py``): the TapResponse, idempotent starts, stop, not-found, and
the BYE a receiver gets when the track goes (unpublish, its publisher leaving, the room migrating).
A tap is no subscriber, but dynacast keeps the top layer on for it. The worker is a real UDP socket;
the up track is a fake with a codec."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest
import pytest_asyncio
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTCP_BYE, is_rtcp
from google.protobuf.message import Message
from livekit.protocol import models, rtc

from parley.bus import ErrorCode, RpcError
from parley.observability import TaskSet
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.sfu import commands, publish
from parley.sfu.config import SfuConfig, SfuSection
from parley.sfu.media.fakes import FakePublishedMedia
from parley.sfu.media.interfaces import MAX_SPATIAL
from parley.sfu.participant import Participant, PublishedTrack
from parley.sfu.room import Room, RoomHost
from parley.sfu.state_reporter import StateReporter
from parley.testing import poll_until

pytestmark = pytest.mark.unit

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


class FakeBus:
    async def publish(self, subject: str, message: Message) -> None:
        pass

    async def call(self, rpc: Any, message: Message, **_: Any) -> Message:
        return rpc.response()  # type: ignore[no-any-return]


class FakeOutbox:
    def __init__(self, sid: str) -> None:
        self.connection_id = f"CO_{sid}"
        self.sent: list[rtc.SignalResponse] = []

    def send(self, response: rtc.SignalResponse) -> None:
        self.sent.append(response)

    def close(self, response: rtc.SignalResponse | None = None) -> None:
        pass


class Worker(asyncio.DatagramProtocol):
    """The egress worker's socket."""

    def __init__(self) -> None:
        self.rtcp: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if is_rtcp(data):
            self.rtcp.append(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    def byes(self) -> int:
        return sum(1 for d in self.rtcp if d[1] == RTCP_BYE)


def make_room(config: SfuConfig, tasks: TaskSet) -> Room:
    bus = FakeBus()
    host = RoomHost(
        bus=bus,  # type: ignore[arg-type]
        config=config,
        node_id="N_test",
        reporter=StateReporter(bus, tasks),  # type: ignore[arg-type]
        on_empty=lambda room: None,
    )
    return Room(host, models.Room(name="r", sid="RM_test"))


@pytest_asyncio.fixture
async def room() -> AsyncIterator[Room]:
    tasks = TaskSet("test")
    room = make_room(SfuConfig(sfu=SfuSection(tap_rtcp_timeout=0.4)), tasks)
    yield room
    await room.aclose()
    await tasks.aclose()


@pytest_asyncio.fixture
async def worker() -> AsyncIterator[Worker]:
    w = Worker()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: w, local_addr=("127.0.0.1", 0)
    )
    yield w
    transport.close()


def publisher(room: Room, identity: str = "alice", track_sid: str = "TR_v") -> Participant:
    info = models.ParticipantInfo(sid=f"PA_{identity}", identity=identity)
    p = Participant(
        info=info,
        outbox=FakeOutbox(info.sid),  # type: ignore[arg-type]
        edge_id="e",
        auto_subscribe=True,
        protocol=16,
        client_info=models.ClientInfo(),
    )
    p.active = True
    room.participants[p.sid] = p
    up = FakePublishedMedia("video", track_sid)
    up.codecs[96] = VP8
    track = PublishedTrack(
        info=models.TrackInfo(sid=track_sid, type=models.TrackType.VIDEO, mime_type="video/VP8", name="cam"),
        up=up,
    )
    p.published[track_sid] = track
    room.dynacast.add(p, track, "vp8")
    return p


async def tap(
    room: Room, worker: Worker, track_sid: str = "TR_v", tap_id: str = "EG_1", **kw: Any
) -> node_pb2.TapResponse:
    kw.setdefault("port", worker.port)
    request = node_pb2.TapRequest(
        room_name=room.name, track_sid=track_sid, tap_id=tap_id, host="127.0.0.1", **kw
    )
    command = node_pb2.RoomCommand(room_name=room.name, tap=request)
    result = await room.call(lambda: commands.execute(room, command))
    return result.tap


def sync(fn: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    """A room job of a synchronous call."""

    async def job() -> None:
        fn()

    return job


def qualities(p: Participant) -> list[int]:
    """The highest enabled quality of each subscribed_quality_update p got."""
    sent: list[rtc.SignalResponse] = p.outbox.sent  # type: ignore[attr-defined]
    return [
        max((q.quality for q in m.subscribed_quality_update.subscribed_qualities if q.enabled), default=-1)
        for m in sent
        if m.WhichOneof("message") == "subscribed_quality_update"
    ]


async def test_a_tap_answers_with_its_stream_and_is_no_subscriber(room: Room, worker: Worker) -> None:
    alice = publisher(room)
    assert room.dynacast.needed("TR_v") == (-1, False)
    response = await tap(room, worker)
    assert (response.mime_type, response.payload_type, response.clock_rate) == ("video/VP8", 96, 90000)
    assert response.ssrc != 0 and response.source_host == "127.0.0.1" and response.source_port > 0
    assert response.track.sid == "TR_v" and response.track.name == "cam"
    assert response.participant_identity == "alice"
    # no subscriber, no participant: but the publisher keeps its top layer on for the tap
    assert list(room.participants) == ["PA_alice"] and not alice.downtracks
    assert room.dynacast.needed("TR_v") == (MAX_SPATIAL, True)
    assert qualities(alice) == [MAX_SPATIAL]
    up = cast(FakePublishedMedia, alice.published["TR_v"].up)
    assert len(up.sinks) == 1 and up.keyframe_requests == 1


async def test_repeating_a_start_returns_the_running_tap(room: Room, worker: Worker) -> None:
    alice = publisher(room)
    first = await tap(room, worker)
    again = await tap(room, worker)
    assert again == first and len(room.taps) == 1
    other = await tap(room, worker, tap_id="EG_2")
    assert other.ssrc != first.ssrc and len(room.taps) == 2
    assert len(cast(FakePublishedMedia, alice.published["TR_v"].up).sinks) == 2


async def test_a_start_for_another_receiver_replaces_the_tap(room: Room, worker: Worker) -> None:
    """A job continued by another worker (the first one was lost) gets the stream at its address."""
    alice = publisher(room)
    first = await tap(room, worker)
    moved = await tap(room, worker, port=worker.port + 1 if worker.port < 65535 else worker.port - 1)
    assert moved.ssrc != first.ssrc and len(room.taps) == 1
    assert len(cast(FakePublishedMedia, alice.published["TR_v"].up).sinks) == 1


async def test_an_unknown_track_is_not_found(room: Room, worker: Worker) -> None:
    publisher(room)
    with pytest.raises(RpcError) as missing:
        await tap(room, worker, track_sid="TR_x")
    assert missing.value.code is ErrorCode.NOT_FOUND
    assert missing.value.message == "track TR_x not found in room r"
    with pytest.raises(RpcError) as nowhere:
        await tap(room, worker, port=0)
    assert nowhere.value.code is ErrorCode.INVALID_ARGUMENT


async def test_a_track_not_bound_yet_is_unavailable_for_now(room: Room, worker: Worker) -> None:
    """Published (add_track) before its m-line is bound: the worker is told to ask again."""
    alice = publisher(room)
    alice.published["TR_v"].up = None
    with pytest.raises(RpcError) as early:
        await tap(room, worker)
    assert (early.value.code, early.value.message) == (ErrorCode.UNAVAILABLE, "track TR_v has no media yet")
    del alice.published["TR_v"]
    alice.pending["cid"] = models.TrackInfo(sid="TR_v", type=models.TrackType.VIDEO)  # added, not offered
    with pytest.raises(RpcError) as announced:
        await tap(room, worker)
    assert announced.value.code == ErrorCode.UNAVAILABLE
    assert len(room.taps) == 0


async def test_stop_ends_the_tap_with_a_bye(room: Room, worker: Worker) -> None:
    alice = publisher(room)
    await tap(room, worker)
    stopped = await tap(room, worker, stop=True)
    assert stopped == node_pb2.TapResponse() and len(room.taps) == 0
    await poll_until(lambda: worker.byes() == 1, message="BYE on stop")
    assert cast(FakePublishedMedia, alice.published["TR_v"].up).sinks == []
    assert room.dynacast.needed("TR_v") == (-1, False)
    assert await tap(room, worker, tap_id="EG_unknown", stop=True) == node_pb2.TapResponse()


async def test_unpublish_sends_a_bye(room: Room, worker: Worker) -> None:
    alice = publisher(room)
    await tap(room, worker)
    await room.call(sync(lambda: publish.unpublish(room, alice, "TR_v")))
    await poll_until(lambda: worker.byes() == 1, message="BYE on unpublish")
    assert len(room.taps) == 0


async def test_the_publisher_leaving_sends_a_bye(room: Room, worker: Worker) -> None:
    alice = publisher(room)
    await tap(room, worker)
    await room.call(lambda: room.remove(alice, models.DisconnectReason.CLIENT_INITIATED))
    await poll_until(lambda: worker.byes() == 1, message="BYE on leave")
    assert len(room.taps) == 0


async def test_a_migrating_room_ends_its_taps(room: Room, worker: Worker) -> None:
    publisher(room)
    publisher(room, "bob", "TR_b")
    await tap(room, worker)
    await tap(room, worker, track_sid="TR_b")
    await room.call(room.migrate)
    await poll_until(lambda: worker.byes() == 2, message="a BYE per tap")
    assert len(room.taps) == 0


async def test_mute_reaches_the_tap(room: Room, worker: Worker) -> None:
    alice = publisher(room)
    await tap(room, worker)
    await room.call(sync(lambda: publish.set_muted(room, alice, "TR_v", True)))
    (running,) = room.taps._taps.values()
    assert running[0].muted
    await room.call(sync(lambda: publish.set_muted(room, alice, "TR_v", False)))
    assert not running[0].muted


async def test_a_tap_without_rtcp_ends_and_is_forgotten(room: Room, worker: Worker) -> None:
    publisher(room)
    await tap(room, worker)  # the room's tap_rtcp_timeout is 0.4 s
    await poll_until(lambda: len(room.taps) == 0, timeout=3, message="the silent tap forgotten")
    assert room.dynacast.needed("TR_v") == (-1, False)
