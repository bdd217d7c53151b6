"""livekit.Egress over the bus (the edge checks roomRecord and forwards here) and the workers'
reports. Answers and errors are LiveKit's (``livekit/livekit`` ``pkg/service/egress.go``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from livekit.protocol import egress as lk
from livekit.protocol import room as lk_room

from parley.bus import Bus, BusError, RpcError, rpcs
from parley.egress import infos
from parley.egress.config import EgressSection
from parley.egress.errors import (
    CannotStop,
    CannotUpdate,
    EgressNotFound,
    NoWorker,
    RequestTimedOut,
    RoomNotFound,
)
from parley.egress.ids import new_egress_id
from parley.egress.interfaces import EgressStore
from parley.egress.placement import Placer
from parley.egress.record import EgressRecord
from parley.observability import get_logger
from parley.protocol.gen.egress.v1 import egress_pb2 as eg

log = get_logger("parley.egress.controller")

ROOM_STATE_TIMEOUT = 5.0
END_REASON_STOP = "End reason: StopEgress API"


def _now_ns() -> int:
    return time.time_ns()


class Controller:
    def __init__(
        self,
        bus: Bus,
        store: EgressStore,
        placer: Placer,
        section: EgressSection,
        *,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._bus = bus
        self._store = store
        self._placer = placer
        self._section = section
        self._on_commit = on_commit
        self._lease_ms = int(section.lease * 1000)

    # start ---------------------------------------------------------------------------------------
    async def start_egress(self, req: lk.StartEgressRequest) -> lk.EgressInfo:
        return await self._start(eg.EgressRequest(egress=req))

    async def start_room_composite(self, req: lk.RoomCompositeEgressRequest) -> lk.EgressInfo:
        return await self._start(eg.EgressRequest(room_composite=req))

    async def start_web(self, req: lk.WebEgressRequest) -> lk.EgressInfo:
        return await self._start(eg.EgressRequest(web=req))

    async def start_participant(self, req: lk.ParticipantEgressRequest) -> lk.EgressInfo:
        return await self._start(eg.EgressRequest(participant=req))

    async def start_track_composite(self, req: lk.TrackCompositeEgressRequest) -> lk.EgressInfo:
        return await self._start(eg.EgressRequest(track_composite=req))

    async def start_track(self, req: lk.TrackEgressRequest) -> lk.EgressInfo:
        return await self._start(eg.EgressRequest(track=req))

    async def _start(self, request: eg.EgressRequest) -> lk.EgressInfo:
        infos.validate(request)
        room_name = infos.room_name(request)
        room_id = await self._room_id(room_name) if room_name else ""
        egress_id = new_egress_id()
        record = infos.new_record(egress_id, room_id, request, self._section.cpu_costs, _now_ns())
        worker_id, accepted = await self._placer.place(record.job())
        infos.placed(record, worker_id, accepted, _now_ns())
        record.due_ms = _now_ns() // 1_000_000 + self._lease_ms
        try:
            await self._store.mutate(egress_id, lambda _: (record, None))
        except Exception:
            await self._stop_on_worker(worker_id, egress_id)
            raise
        self._on_commit()
        log.info(
            "egress started", egress_id=egress_id, room=room_name, worker=worker_id, kind=infos.kind(request)
        )
        return record.info

    async def _room_id(self, room_name: str) -> str:
        """The room's sid (LiveKit loads the room first: an unknown room is not_found)."""
        found = await self._bus.call(
            rpcs.LIST_ROOMS, lk_room.ListRoomsRequest(names=[room_name]), timeout=ROOM_STATE_TIMEOUT
        )
        for room in found.rooms:
            if room.name == room_name:
                return str(room.sid)
        raise RoomNotFound()

    async def _stop_on_worker(self, worker_id: str, egress_id: str) -> None:
        try:
            await self._bus.call(
                rpcs.EGRESS_JOB_CONTROL,
                eg.JobControl(egress_id=egress_id, stop=True),
                topic=worker_id,
                timeout=self._section.control_timeout,
            )
        except BusError as exc:
            log.warning(
                "cannot stop an unrecorded job", egress_id=egress_id, worker=worker_id, error=str(exc)
            )

    async def _load(self, egress_id: str) -> EgressRecord:
        record = await self._store.get(egress_id)
        if record is None:
            raise EgressNotFound()
        return record

    # stop ----------------------------------------------------------------------------------------
    async def stop_egress(self, req: lk.StopEgressRequest) -> lk.EgressInfo:
        record = await self._load(req.egress_id)
        if infos.is_final(record.info.status):
            raise CannotStop(infos.status_name(record.info.status))
        if not record.worker_id:  # its part is being offered again: stopped where it is
            return await self._mutate(req.egress_id, _stop_unplaced)
        try:
            info = await self._bus.call(
                rpcs.EGRESS_JOB_CONTROL,
                eg.JobControl(egress_id=req.egress_id, stop=True),
                topic=record.worker_id,
                timeout=self._section.control_timeout,
            )
        except BusError as exc:
            # LiveKit answers the worker's error while STARTING/ACTIVE, a worker that does not answer
            # as "request timed out" (not 503); the stop flag makes the lease sweeper finalize the job
            # if its worker is really gone.
            await self._mutate(req.egress_id, _flag_stop)
            if isinstance(exc, RpcError):
                raise
            raise RequestTimedOut() from exc
        log.info("egress stop sent", egress_id=req.egress_id, room=record.room_name, worker=record.worker_id)
        return await self._mutate(req.egress_id, lambda r: _stopped_by_worker(r, info))

    async def _mutate(self, egress_id: str, change: Callable[[EgressRecord], None]) -> lk.EgressInfo:
        def fn(record: EgressRecord | None) -> tuple[EgressRecord | None, lk.EgressInfo]:
            if record is None:
                raise EgressNotFound()
            change(record)
            return record, record.info

        info = await self._store.mutate(egress_id, fn)
        self._on_commit()
        return info

    # update --------------------------------------------------------------------------------------
    async def update_stream(self, req: lk.UpdateStreamRequest) -> lk.EgressInfo:
        record = await self._load(req.egress_id)
        if infos.is_final(record.info.status) or record.info.status == infos.ENDING:
            raise CannotUpdate(infos.status_name(record.info.status))
        urls = infos.update_streams(record, req)
        if not record.worker_id:  # its part is being offered again: no worker to update (LiveKit's error)
            raise NoWorker()
        info = await self._bus.call(
            rpcs.EGRESS_JOB_CONTROL,
            eg.JobControl(egress_id=req.egress_id, update_stream=req),
            topic=record.worker_id,
            timeout=self._section.control_timeout,
        )

        def change(r: EgressRecord) -> None:
            infos.apply_worker_info(r, info, _now_ns())
            r.stream_urls = urls

        return await self._mutate(req.egress_id, change)

    async def update_layout(self, req: lk.UpdateLayoutRequest) -> lk.EgressInfo:
        """As LiveKit: the recorder (identity = egress id) gets ``{"layout": …}`` as its metadata
        through room-state's UpdateParticipant and re-reads it; the stored info is returned."""
        record = await self._load(req.egress_id)
        metadata = json.dumps({"layout": req.layout}, separators=(",", ":"))
        await self._bus.call(
            rpcs.UPDATE_PARTICIPANT,
            lk_room.UpdateParticipantRequest(
                room=record.room_name, identity=req.egress_id, metadata=metadata
            ),
            timeout=ROOM_STATE_TIMEOUT,
        )
        return record.info

    # list ----------------------------------------------------------------------------------------
    async def list_egress(self, req: lk.ListEgressRequest) -> lk.ListEgressResponse:
        if req.egress_id:
            return lk.ListEgressResponse(items=[(await self._load(req.egress_id)).info])
        found = await self._store.list_infos(req.room_name)
        return lk.ListEgressResponse(items=infos.listed(found, req.active))

    # worker reports ------------------------------------------------------------------------------
    async def report(self, report: eg.EgressReport) -> eg.ReportAck:
        def fn(record: EgressRecord | None) -> tuple[EgressRecord | None, eg.ReportAck]:
            if record is None:
                return None, eg.ReportAck(unknown=True)
            if record.worker_id != report.worker_id or record.part != report.part:
                return None, eg.ReportAck(unknown=True)  # not (or no longer) its job
            changed = infos.apply_report(record, report, _now_ns())
            return (record if changed else None), eg.ReportAck(stop=record.stop_requested)

        ack = await self._store.mutate(report.egress_id, fn)
        self._on_commit()
        return ack


def _flag_stop(record: EgressRecord) -> None:
    record.stop_requested = True


def _stop_unplaced(record: EgressRecord) -> None:
    record.stop_requested = True
    if record.info.status == infos.STARTING:
        infos.abort_before_start(record, _now_ns())
    elif record.info.status == infos.ACTIVE:
        infos.apply_worker_info(
            record, lk.EgressInfo(status=infos.ENDING, details=END_REASON_STOP), _now_ns()
        )


def _stopped_by_worker(record: EgressRecord, info: lk.EgressInfo) -> None:
    record.stop_requested = True
    infos.apply_worker_info(record, info, _now_ns())
