"""The egress controller on a MemoryBus with the in-memory store, fake workers and a fake
room-state: placement by offers, LiveKit's answers and errors for Start/Stop/Update/List, worker
reports, leases continued as the next part, and the egress_* events the outbox relays."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from livekit.protocol import egress as lk
from livekit.protocol import models
from livekit.protocol import room as lk_room

from parley.bus import Delivery, ErrorCode, MemoryBus, RpcError, rpcs, serve_all, subjects
from parley.egress.app import SERVES, Parts
from parley.egress.config import EgressSection
from parley.egress.fakes import MemoryStore
from parley.observability import TaskSet
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.testing import poll_until

from .fake_worker import BUSY, FakeWorker

pytestmark = pytest.mark.unit

S = lk.EgressStatus
ROOM, ROOM_SID = "r1", "RM_r1"


@dataclass
class Env:
    bus: MemoryBus
    store: MemoryStore
    parts: Parts
    events: list[pb.RoomEvent]
    layouts: list[lk_room.UpdateParticipantRequest] = field(default_factory=list)

    async def worker(self, worker_id: str, **kwargs: object) -> FakeWorker:
        w = FakeWorker(self.bus, worker_id, **kwargs)  # type: ignore[arg-type]
        await w.start()
        await poll_until(lambda: self.parts.workers.known(worker_id), message="worker seen")
        return w

    def named(self, name: str) -> list[pb.RoomEvent]:
        return [e for e in self.events if e.event == name]


@pytest_asyncio.fixture
async def env() -> AsyncIterator[Env]:
    bus = MemoryBus("egress-unit")
    bus.responder_wait = 0
    store = MemoryStore()
    section = EgressSection(
        lease=0.3, offer_timeout=0.5, offer_rounds=2, continue_timeout=30.0, worker_ttl=60.0
    )
    parts = Parts(bus, bus, store, section)
    tasks = TaskSet("egress-unit")
    e = Env(bus, store, parts, [])

    async def list_rooms(req: lk_room.ListRoomsRequest) -> lk_room.ListRoomsResponse:
        return lk_room.ListRoomsResponse(
            rooms=[models.Room(name=n, sid=ROOM_SID) for n in req.names if n == ROOM]
        )

    async def update_participant(req: lk_room.UpdateParticipantRequest) -> models.ParticipantInfo:
        e.layouts.append(req)
        return models.ParticipantInfo(identity=req.identity, metadata=req.metadata)

    async def on_event(d: Delivery) -> None:
        e.events.append(pb.RoomEvent.FromString(d.data))

    await bus.serve(rpcs.LIST_ROOMS, list_rooms)
    await bus.serve(rpcs.UPDATE_PARTICIPANT, update_participant)
    await bus.subscribe(subjects.ROOM_EVENTS_ALL, on_event)
    await parts.workers.start()
    await serve_all(bus, SERVES, parts.routes())
    tasks.spawn(parts.relay.run(), name="relay")
    yield e
    await tasks.aclose()
    await bus.aclose()


def track_request() -> lk.TrackEgressRequest:
    return lk.TrackEgressRequest(room_name=ROOM, track_id="TR_a", file=lk.DirectFileOutput(filepath="a.ogg"))


def stream_request(*urls: str) -> lk.RoomCompositeEgressRequest:
    return lk.RoomCompositeEgressRequest(
        room_name=ROOM, stream_outputs=[lk.StreamOutput(protocol=lk.StreamProtocol.RTMP, urls=list(urls))]
    )


async def start_track(env: Env) -> lk.EgressInfo:
    return await env.bus.call(rpcs.START_TRACK_EGRESS, track_request(), timeout=5.0)


# start ---------------------------------------------------------------------------------------------
async def test_no_worker_answers_unavailable_and_stores_nothing(env: Env) -> None:
    with pytest.raises(RpcError) as err:
        await start_track(env)
    assert (err.value.code, err.value.message) == (ErrorCode.UNAVAILABLE, "no response from servers")
    assert env.store.records == {} and env.store.outbox == []


async def test_unknown_room_is_not_found(env: Env) -> None:
    await env.worker("W1")
    with pytest.raises(RpcError) as err:
        await env.bus.call(rpcs.START_TRACK_EGRESS, lk.TrackEgressRequest(room_name="nope", track_id="TR_a"))
    assert (err.value.code, err.value.message) == (ErrorCode.NOT_FOUND, "requested room does not exist")


async def test_missing_fields_are_invalid_argument(env: Env) -> None:
    await env.worker("W1")
    with pytest.raises(RpcError) as err:
        await env.bus.call(rpcs.START_TRACK_EGRESS, lk.TrackEgressRequest(room_name=ROOM))
    assert (err.value.code, err.value.message) == (
        ErrorCode.INVALID_ARGUMENT,
        "request has missing or invalid field: track_id",
    )


async def test_accepted_job_is_starting_stored_and_announced(env: Env) -> None:
    w = await env.worker("W1")
    info = await start_track(env)
    assert info.egress_id.startswith("EG_") and len(info.egress_id) == 15
    assert (info.status, info.room_id, info.room_name) == (S.EGRESS_STARTING, ROOM_SID, ROOM)
    assert info.source_type == lk.EgressSourceType.EGRESS_SOURCE_TYPE_SDK
    assert info.started_at == info.updated_at and info.started_at > 10**18  # nanoseconds
    assert info.track.track_id == "TR_a" and len(info.file_results) == 1
    assert [j.egress_id for j in w.offers] == [info.egress_id] and w.offers[0].part == 0
    assert w.offers[0].cost == 0.5 and w.offers[0].request.track.track_id == "TR_a"
    await poll_until(lambda: env.named("egress_started"), message="egress_started")
    event = env.named("egress_started")[0]
    assert event.egress_info == info and event.room.name == ROOM and event.room.sid == ROOM_SID
    assert event.room_sequence == 0


async def test_a_refusal_moves_on_to_the_next_worker(env: Env) -> None:
    busy = await env.worker("W1", capacity=16.0, refuse=BUSY)
    free = await env.worker("W2", capacity=8.0)
    info = await start_track(env)
    assert [j.egress_id for j in busy.offers] == [info.egress_id]  # the most free first
    assert [j.egress_id for j in free.offers] == [info.egress_id]
    record = await env.store.get(info.egress_id)
    assert record is not None and record.worker_id == "W2"


async def test_every_worker_refusing_is_unavailable(env: Env) -> None:
    w = await env.worker("W1", refuse=BUSY)
    with pytest.raises(RpcError) as err:
        await start_track(env)
    assert (err.value.code, err.value.message) == (ErrorCode.UNAVAILABLE, "no response from servers")
    assert len(w.offers) == 2  # offer_rounds


async def test_a_worker_invalid_argument_is_the_answer(env: Env) -> None:
    await env.worker(
        "W1", refuse=ErrorCode.INVALID_ARGUMENT.value, refuse_message="web egress is not yet supported"
    )
    with pytest.raises(RpcError) as err:
        await env.bus.call(rpcs.START_WEB_EGRESS, lk.WebEgressRequest(url="https://example.com"))
    assert (err.value.code, err.value.message) == (
        ErrorCode.INVALID_ARGUMENT,
        "web egress is not yet supported",
    )


async def test_workers_without_room_for_the_cost_or_draining_get_no_offer(env: Env) -> None:
    small = await env.worker("W1", capacity=2.0)  # 2 * 0.8 = 1.6 cores < 4 for a room composite
    draining = await env.worker("W2", capacity=64.0, draining=True)
    with pytest.raises(RpcError):
        await env.bus.call(rpcs.START_ROOM_COMPOSITE_EGRESS, lk.RoomCompositeEgressRequest(room_name=ROOM))
    assert small.offers == [] and draining.offers == []
    info = await env.bus.call(
        rpcs.START_ROOM_COMPOSITE_EGRESS, lk.RoomCompositeEgressRequest(room_name=ROOM, audio_only=True)
    )
    assert [j.egress_id for j in small.offers] == [info.egress_id]  # audio only: 1 core


# reports -------------------------------------------------------------------------------------------
async def test_reports_move_the_status_forward_once(env: Env) -> None:
    w = await env.worker("W1")
    info = await start_track(env)
    ack = await w.report(info.egress_id, S.EGRESS_ACTIVE)
    assert not ack.stop and not ack.unknown
    done = lk.FileInfo(filename="a.ogg", size=100, duration=2_000_000_000, location="/rec/a.ogg")
    await w.report(info.egress_id, S.EGRESS_COMPLETE, file_results=[done])
    w.seq -= 1  # the same report again (a retry): a no-op
    await w.report(info.egress_id, S.EGRESS_COMPLETE, file_results=[done])
    await w.report(info.egress_id, S.EGRESS_ACTIVE)  # never back
    stored = (await env.bus.call(rpcs.LIST_EGRESS, lk.ListEgressRequest(egress_id=info.egress_id))).items[0]
    assert stored.status == S.EGRESS_COMPLETE and stored.ended_at >= stored.started_at
    assert list(stored.file_results) == [done] and stored.file == done
    await poll_until(lambda: env.named("egress_ended"), message="egress_ended")
    assert [e.event for e in env.events] == ["egress_started", "egress_updated", "egress_ended"]
    assert env.named("egress_ended")[0].egress_info == stored


async def test_a_report_for_a_job_it_does_not_hold_is_unknown(env: Env) -> None:
    w = await env.worker("W1")
    other = FakeWorker(env.bus, "W9")
    info = await start_track(env)
    assert (await other.report(info.egress_id, S.EGRESS_ACTIVE)).unknown
    assert (await w.report("EG_unknown", S.EGRESS_ACTIVE)).unknown
    assert (await env.store.get(info.egress_id)).info.status == S.EGRESS_STARTING  # type: ignore[union-attr]


# stop ----------------------------------------------------------------------------------------------
async def test_stop_errors_as_livekit(env: Env) -> None:
    w = await env.worker("W1")
    with pytest.raises(RpcError) as err:
        await env.bus.call(rpcs.STOP_EGRESS, lk.StopEgressRequest(egress_id="EG_nope"))
    assert (err.value.code, err.value.message) == (ErrorCode.NOT_FOUND, "egress does not exist")
    info = await start_track(env)
    await w.report(info.egress_id, S.EGRESS_ACTIVE)
    stopped = await env.bus.call(rpcs.STOP_EGRESS, lk.StopEgressRequest(egress_id=info.egress_id))
    assert stopped.status == S.EGRESS_ENDING and stopped.details == "End reason: StopEgress API"
    assert [c.stop for c in w.controls] == [True]
    assert (await w.report(info.egress_id, S.EGRESS_COMPLETE)).stop
    with pytest.raises(RpcError) as err:
        await env.bus.call(rpcs.STOP_EGRESS, lk.StopEgressRequest(egress_id=info.egress_id))
    assert (err.value.code, err.value.message) == (
        ErrorCode.FAILED_PRECONDITION,
        "egress with status EGRESS_COMPLETE cannot be stopped",
    )


async def test_stop_with_the_worker_gone_times_out_and_flags_the_stop(env: Env) -> None:
    w = await env.worker("W1")
    info = await start_track(env)
    await w.stop()
    with pytest.raises(RpcError) as err:
        await env.bus.call(rpcs.STOP_EGRESS, lk.StopEgressRequest(egress_id=info.egress_id))
    assert (err.value.code, err.value.message) == (ErrorCode.DEADLINE_EXCEEDED, "request timed out")
    record = await env.store.get(info.egress_id)
    assert record is not None and record.stop_requested


# update --------------------------------------------------------------------------------------------
async def test_update_stream_as_livekit(env: Env) -> None:
    w = await env.worker("W1")
    track = await start_track(env)
    with pytest.raises(RpcError) as err:
        await env.bus.call(rpcs.UPDATE_STREAM, lk.UpdateStreamRequest(egress_id=track.egress_id))
    assert (err.value.code, err.value.message) == (
        ErrorCode.INVALID_ARGUMENT,
        "UpdateStream called on non-streaming egress",
    )
    info = await env.bus.call(rpcs.START_ROOM_COMPOSITE_EGRESS, stream_request("rtmp://a/live/key1"))
    assert [s.url for s in info.stream_results] == ["rtmp://a/live/{...}"]  # the stream key is redacted
    assert info.room_composite.stream_outputs[0].urls == ["rtmp://a/live/{...}"]
    with pytest.raises(RpcError) as err:
        await env.bus.call(
            rpcs.UPDATE_STREAM,
            lk.UpdateStreamRequest(egress_id=info.egress_id, remove_output_urls=["rtmp://b/x/y"]),
        )
    assert (err.value.code, err.value.message) == (ErrorCode.NOT_FOUND, "stream rtmp://b/x/{...} not found")
    added = await env.bus.call(
        rpcs.UPDATE_STREAM,
        lk.UpdateStreamRequest(egress_id=info.egress_id, add_output_urls=["rtmp://b/live/key2"]),
    )
    assert added.status == S.EGRESS_ACTIVE and w.controls[-1].update_stream.add_output_urls == [
        "rtmp://b/live/key2"
    ]
    record = await env.store.get(info.egress_id)
    assert record is not None and record.stream_urls == ["rtmp://a/live/key1", "rtmp://b/live/key2"]
    await w.report(info.egress_id, S.EGRESS_FAILED, error="boom", error_code=500)
    with pytest.raises(RpcError) as err:
        await env.bus.call(rpcs.UPDATE_STREAM, lk.UpdateStreamRequest(egress_id=info.egress_id))
    assert (err.value.code, err.value.message) == (
        ErrorCode.FAILED_PRECONDITION,
        "egress with status EGRESS_FAILED cannot be updated",
    )


async def test_update_layout_sets_the_recorders_metadata(env: Env) -> None:
    await env.worker("W1")
    info = await env.bus.call(rpcs.START_ROOM_COMPOSITE_EGRESS, lk.RoomCompositeEgressRequest(room_name=ROOM))
    answer = await env.bus.call(
        rpcs.UPDATE_LAYOUT, lk.UpdateLayoutRequest(egress_id=info.egress_id, layout="speaker")
    )
    assert answer.egress_id == info.egress_id
    [req] = env.layouts
    assert (req.room, req.identity) == (ROOM, info.egress_id)
    assert json.loads(req.metadata) == {"layout": "speaker"}
    with pytest.raises(RpcError) as err:
        await env.bus.call(rpcs.UPDATE_LAYOUT, lk.UpdateLayoutRequest(egress_id="EG_nope", layout="grid"))
    assert (err.value.code, err.value.message) == (ErrorCode.NOT_FOUND, "egress does not exist")


# list ----------------------------------------------------------------------------------------------
async def test_list_filters(env: Env) -> None:
    assert (await env.bus.call(rpcs.LIST_EGRESS, lk.ListEgressRequest())).items == []
    w = await env.worker("W1")
    a = await start_track(env)
    b = await start_track(env)
    await w.report(b.egress_id, S.EGRESS_COMPLETE)

    async def ids(**kw: object) -> list[str]:
        found = await env.bus.call(rpcs.LIST_EGRESS, lk.ListEgressRequest(**kw))  # type: ignore[arg-type]
        return [i.egress_id for i in found.items]

    assert await ids() == [a.egress_id, b.egress_id]
    assert await ids(room_name=ROOM) == [a.egress_id, b.egress_id]
    assert await ids(room_name="other") == []
    assert await ids(active=True) == [a.egress_id]
    assert await ids(egress_id=b.egress_id, active=True) == [b.egress_id]  # an id ignores `active`
    with pytest.raises(RpcError) as err:
        await ids(egress_id="EG_nope")
    assert (err.value.code, err.value.message) == (ErrorCode.NOT_FOUND, "egress does not exist")


# leases ----------------------------------------------------------------------------------------------
async def test_heartbeats_keep_the_lease(env: Env) -> None:
    w = await env.worker("W1")
    info = await start_track(env)
    for _ in range(4):
        await w.beat()
        await poll_until(lambda: env.store.due[info.egress_id] > 0)
        await env.parts.leases.sweep_once()
    record = await env.store.get(info.egress_id)
    assert record is not None and (record.worker_id, record.part) == ("W1", 0)


async def test_an_expired_lease_continues_as_the_next_part(env: Env) -> None:
    first = await env.worker("W1")
    info = await start_track(env)
    await first.report(info.egress_id, S.EGRESS_ACTIVE, checkpoint=b"upload-1")
    await first.stop()
    second = await env.worker("W2")

    async def continued() -> bool:
        await env.parts.leases.sweep_once()
        return bool(second.offers)

    await poll_until(continued, timeout=5.0, message="the next part offered")
    [job] = second.offers
    assert (job.egress_id, job.part, job.previous, job.finalize) == (info.egress_id, 1, b"upload-1", False)
    record = await env.store.get(info.egress_id)
    assert record is not None and (record.worker_id, record.part) == ("W2", 1)
    assert record.info.retry_count == 1 and record.info.status == S.EGRESS_ACTIVE
    assert record.info.details == "End reason: worker lost; continuing as part 1"
    assert (await first.report(info.egress_id, S.EGRESS_COMPLETE)).unknown  # the lost worker: ignored
    await second.report(info.egress_id, S.EGRESS_COMPLETE)
    await poll_until(lambda: env.named("egress_ended"), message="egress_ended")
    assert [e.event for e in env.events] == [
        "egress_started",
        "egress_updated",
        "egress_updated",
        "egress_ended",
    ]
    assert env.events[2].egress_info.retry_count == 1


async def test_a_stopped_job_whose_worker_is_lost_is_finalized_by_the_next_part(env: Env) -> None:
    first = await env.worker("W1")
    info = await start_track(env)
    await first.report(info.egress_id, S.EGRESS_ACTIVE)
    await first.stop()
    with pytest.raises(RpcError):
        await env.bus.call(rpcs.STOP_EGRESS, lk.StopEgressRequest(egress_id=info.egress_id))
    second = await env.worker("W2")

    async def offered() -> bool:
        await env.parts.leases.sweep_once()
        return bool(second.offers)

    await poll_until(offered, timeout=5.0)
    assert second.offers[0].finalize and second.offers[0].part == 1


async def test_a_lost_starting_job_that_was_stopped_is_aborted(env: Env) -> None:
    w = await env.worker("W1")
    info = await start_track(env)
    await w.stop()
    with pytest.raises(RpcError):
        await env.bus.call(rpcs.STOP_EGRESS, lk.StopEgressRequest(egress_id=info.egress_id))

    async def aborted() -> bool:
        await env.parts.leases.sweep_once()
        record = await env.store.get(info.egress_id)
        return record is not None and record.info.status == S.EGRESS_ABORTED

    await poll_until(aborted, timeout=5.0)
    record = await env.store.get(info.egress_id)
    assert record is not None
    assert (record.info.error, record.info.error_code) == ("Stop called before pipeline could start", 412)


async def test_no_worker_for_the_next_part_within_continue_timeout_fails(env: Env) -> None:
    env.parts.leases._section = env.parts.leases._section.model_copy(update={"continue_timeout": 0.2})
    w = await env.worker("W1")
    info = await start_track(env)
    await w.stop()

    async def failed() -> bool:
        await env.parts.leases.sweep_once()
        record = await env.store.get(info.egress_id)
        return record is not None and record.info.status == S.EGRESS_FAILED

    await poll_until(failed, timeout=8.0)
    record = await env.store.get(info.egress_id)
    assert record is not None
    assert (record.info.error, record.info.error_code, record.info.retry_count) == ("worker lost", 503, 1)
    assert record.info.details == "End reason: Failure" and record.info.ended_at > 0
    assert env.store.due == {} and info.egress_id in env.store.ended


async def test_stop_and_update_while_the_next_part_waits_for_a_worker(env: Env) -> None:
    w = await env.worker("W1")
    info = await env.bus.call(rpcs.START_ROOM_COMPOSITE_EGRESS, stream_request("rtmp://a/live/key1"))
    await w.report(info.egress_id, S.EGRESS_ACTIVE)
    await w.stop()

    async def unplaced() -> bool:
        await env.parts.leases.sweep_once()
        record = await env.store.get(info.egress_id)
        return record is not None and record.part == 1 and not record.worker_id

    await poll_until(unplaced, timeout=5.0, message="the lease expired; no worker for part 1")
    with pytest.raises(RpcError) as err:
        await env.bus.call(
            rpcs.UPDATE_STREAM,
            lk.UpdateStreamRequest(egress_id=info.egress_id, add_output_urls=["rtmp://b/x/y"]),
        )
    assert (err.value.code, err.value.message) == (ErrorCode.UNAVAILABLE, "no response from servers")
    stopped = await env.bus.call(rpcs.STOP_EGRESS, lk.StopEgressRequest(egress_id=info.egress_id))
    assert (stopped.status, stopped.details) == (S.EGRESS_ENDING, "End reason: StopEgress API")
    record = await env.store.get(info.egress_id)
    assert record is not None and record.stop_requested
