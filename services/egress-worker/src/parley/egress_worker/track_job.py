"""One track egress: an SFU RTP tap recorded to a file without transcoding, then stored.

Life of a job (each step reported to the controller, which writes the record):

1. accepted (``prepare``, before the offer is answered): the request is checked (a file output,
   a storage this worker can use); the STARTING info names the file.
2. ``run``: a UDP socket, then TapTrack (room-state → the room's node) with its address; the
   answer gives the codec (Opus → OGG, VP8 → WebM, H.264 → MP4, never transcoded). A track whose
   up track has no codec yet is asked again until ``start_timeout``.
3. the first muxed frame: ACTIVE (file ``started_at``).
   Its checkpoint (the file's name, where it is written, when it started) goes with that report: a
   worker that continues the job after this one is lost (part n+1, a new file ``-n``) reports the
   lost part's file first when it was recorded in place (local storage).
4. the end: StopEgress (``stop``), the tap's BYE (track unpublished, publisher gone, room moved) or
   no packet for ``source_timeout`` ("Source closed"): ENDING, the file is closed, uploaded, and the
   job is COMPLETE with the FileInfo (size, duration from the media timestamps, location). Nothing
   recorded: ABORTED "Stop called before pipeline could start" (412) after a stop, else FAILED.
   A failed tap or upload: FAILED with the reason.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from livekit.protocol import egress as lk

from parley.bus import Bus, BusError, ErrorCode, RpcError, rpcs
from parley.egress_worker.checkpoint import Checkpoint
from parley.egress_worker.config import EgressWorkerSection
from parley.egress_worker.errors import EgressWorkerError, SourceError, UnsupportedRequest
from parley.egress_worker.media import MediaError, TrackCodec, TrackRecorder, container_for, recorded_duration
from parley.egress_worker.naming import NameFields, file_name
from parley.egress_worker.reporter import Reporter
from parley.egress_worker.storage import Storage, storage_for
from parley.egress_worker.tap_receiver import TapReceiver
from parley.observability import get_logger, wait_event
from parley.protocol.gen.egress.v1 import egress_pb2 as eg
from parley.protocol.gen.sfu.v1 import node_pb2

log = get_logger("parley.egress_worker.track_job")

STARTING = lk.EgressStatus.EGRESS_STARTING
ACTIVE = lk.EgressStatus.EGRESS_ACTIVE
ENDING = lk.EgressStatus.EGRESS_ENDING
COMPLETE = lk.EgressStatus.EGRESS_COMPLETE
FAILED = lk.EgressStatus.EGRESS_FAILED
ABORTED = lk.EgressStatus.EGRESS_ABORTED
END_STOP = "End reason: StopEgress API"
END_SOURCE = "End reason: Source closed"
TICK_S = 0.25
TAP_TIMEOUT = 8.0
PLACEMENT_GRACE_S = 10.0
"""Seconds after acceptance a report answered ``unknown`` is sent again (see ``_deliver``)."""


def _now_ns() -> int:
    return time.time_ns()


def _http_code(code: ErrorCode) -> int:
    return {
        ErrorCode.NOT_FOUND: 404,
        ErrorCode.INVALID_ARGUMENT: 400,
        ErrorCode.UNAVAILABLE: 503,
        ErrorCode.PERMISSION_DENIED: 403,
        ErrorCode.DEADLINE_EXCEEDED: 504,
    }.get(code, 500)


class TrackJob:
    def __init__(self, job: eg.EgressJob, section: EgressWorkerSection, bus: Bus, reporter: Reporter) -> None:
        if job.request.WhichOneof("request") != "track":
            raise UnsupportedRequest("only track egress runs on this worker yet")
        self.job = job
        self.egress_id = job.egress_id
        self.part = job.part
        self.request: lk.TrackEgressRequest = job.request.track
        self._section = section
        self._bus = bus
        self._reporter = reporter
        self._fields = {
            "egress_id": job.egress_id,
            "room": self.request.room_name,
            "track": self.request.track_id,
        }
        if self.request.websocket_url:
            raise UnsupportedRequest("websocket track egress is not yet supported")
        if not self.request.HasField("file"):
            raise UnsupportedRequest("request has missing or invalid field: file")
        self.storage: Storage = storage_for(self.request.file, section)
        self._stop = asyncio.Event()
        self._end_reason = ""
        self.status: int = STARTING
        self._recorder: TrackRecorder | None = None
        self._receiver: TapReceiver | None = None
        self.filename = ""
        self._started_ns = 0
        self._accepted_at = time.monotonic()
        self._path: Path | None = None

    # -- accepted ---------------------------------------------------------------------------------
    def starting_info(self) -> lk.EgressInfo:
        """The job's STARTING info: the controller's, with the file named when the path has an
        extension (otherwise the codec decides it once the tap answers)."""
        info = lk.EgressInfo()
        info.CopyFrom(self.job.info)
        return info

    # -- control ----------------------------------------------------------------------------------
    def stop(self) -> lk.EgressInfo:
        """StopEgress: ENDING now (the file is finished in the background), or ABORTED before any media."""
        if not self._stop.is_set():
            self._end_reason = END_STOP
            self._stop.set()
        if self.status == ACTIVE or self.status == ENDING:
            self.status = ENDING
            return lk.EgressInfo(egress_id=self.egress_id, status=ENDING, details=END_STOP)
        return lk.EgressInfo(
            egress_id=self.egress_id,
            status=ABORTED,
            error="Stop called before pipeline could start",
            error_code=412,
        )

    # -- run --------------------------------------------------------------------------------------
    async def run(self) -> None:
        work = Path(self._section.work_dir or tempfile.gettempdir()) / "parley-egress"
        work.mkdir(parents=True, exist_ok=True)
        try:
            if self.job.previous:
                await self.finish_previous()
            await self._record(work)
        except EgressWorkerError as exc:
            await self._fail(str(exc), exc.http_code)
        except MediaError as exc:
            await self._fail(str(exc), 500)
        except asyncio.CancelledError:
            self._close_media()
            raise
        except Exception as exc:
            log.exception("track egress crashed", **self._fields)
            await self._fail(f"internal error: {exc}", 500)
        finally:
            self._close_media()

    async def _record(self, work: Path) -> None:
        holder: list[TrackRecorder] = []

        def sink(packet: object, now: float) -> None:
            if holder:
                holder[0].push(packet, now)  # type: ignore[arg-type]

        receiver = self._receiver = await TapReceiver.open(self._section.rtp_host, sink)
        tap = await self._tap(*receiver.address)
        receiver.source = (tap.source_host, tap.source_port)
        codec = TrackCodec(
            mime_type=tap.mime_type, clock_rate=tap.clock_rate, channels=tap.channels, fmtp=tap.fmtp
        )
        _, extension = container_for(codec.mime_type)
        self.filename = self._name(extension)
        local = self.storage.direct_path(self.filename) or work / f"{self.egress_id}-{self.part}{extension}"
        self._path = local
        recorder = self._recorder = TrackRecorder(str(local), codec)
        holder.append(recorder)
        log.info("track egress recording", file=self.filename, codec=codec.mime_type, **self._fields)
        await self._follow(receiver, recorder)
        await self._finish(recorder, local)

    async def finish_previous(self) -> None:
        """The lost part before this one: its file, recorded in place, is stored already; report its
        FileInfo (size, the media it holds, ended when the file was last written). A part recorded
        for upload (S3) was lost with its worker's work directory."""
        checkpoint = Checkpoint.decode(self.job.previous)
        path = Path(checkpoint.path) if checkpoint and checkpoint.path else None
        if checkpoint is None or path is None or not path.is_file():
            log.warning("previous part lost with its worker", part=self.part - 1, **self._fields)
            return
        duration = await asyncio.to_thread(recorded_duration, path)
        stat = path.stat()
        info = lk.FileInfo(
            filename=checkpoint.filename,
            started_at=checkpoint.started_at,
            ended_at=stat.st_mtime_ns,
            duration=int((duration or 0.0) * 1e9),
            size=stat.st_size,
            location=await self.storage.upload(path, checkpoint.filename),
        )
        await self._send(ACTIVE, files=[info])
        log.info(
            "previous part finished",
            part=self.part - 1,
            file=info.filename,
            duration_s=duration,
            **self._fields,
        )

    async def _tap(self, host: str, port: int) -> node_pb2.TapResponse:
        request = node_pb2.TapRequest(
            room_name=self.request.room_name, track_sid=self.request.track_id, tap_id=self.egress_id,
            host=host, port=port,
        )  # fmt: skip
        deadline = time.monotonic() + self._section.start_timeout
        while True:
            try:
                return await self._bus.call(rpcs.TAP_TRACK, request, timeout=TAP_TIMEOUT)
            except BusError as exc:
                retry = exc.code in (ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED)
                if not retry or time.monotonic() > deadline or self._stop.is_set():
                    message = exc.message if isinstance(exc, RpcError) else str(exc)
                    raise SourceError(message, _http_code(exc.code)) from exc
                await asyncio.sleep(0.5)

    def _name(self, extension: str) -> str:
        fields = NameFields(
            room_name=self.request.room_name,
            room_id=self.job.room_id,
            track_id=self.request.track_id,
            at=time.time(),
        )
        return file_name(self.request.file.filepath, fields, extension, self.part)

    async def _follow(self, receiver: TapReceiver, recorder: TrackRecorder) -> None:
        """Until stop, BYE or silence: keep-alives, PLIs, NACKs; ACTIVE at the first frame."""
        section = self._section
        started = time.monotonic()
        next_rr = 0.0
        next_pli = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_rr:
                receiver.send_receiver_report()
                next_rr = now + 1.0
            if recorder.needs_keyframe and now >= next_pli:
                receiver.send_pli()
                next_pli = now + 1.0
            receiver.send_nack(recorder.missing())
            if self.status == STARTING and recorder.first_media_at is not None:
                await self._active()
            if receiver.bye.is_set():
                self._end_reason = END_SOURCE
                break
            last = receiver.last_packet_at
            if last is not None and now - last > section.source_timeout:
                self._end_reason = END_SOURCE
                break
            if last is None and now - started > section.start_timeout:
                raise SourceError(
                    f"no media from track {self.request.track_id} in {section.start_timeout:g} s"
                )
            await wait_event(self._stop, TICK_S)
        if not receiver.bye.is_set():
            await self._untap()

    async def _active(self) -> None:
        self.status = ACTIVE
        self._started_ns = _now_ns()
        report = eg.EgressReport(egress_id=self.egress_id, part=self.part, status=ACTIVE)
        report.file_results.add(filename=self.filename, started_at=self._started_ns)
        report.checkpoint = Checkpoint(self.filename, str(self._path), self._started_ns).encode()
        ack = await self._deliver(report)
        if ack.stop and not self._stop.is_set():
            self._end_reason = END_STOP
            self._stop.set()
        log.info("track egress active", file=self.filename, **self._fields)

    async def _untap(self) -> None:
        request = node_pb2.TapRequest(
            room_name=self.request.room_name,
            track_sid=self.request.track_id,
            tap_id=self.egress_id,
            stop=True,
        )
        try:
            await self._bus.call(rpcs.TAP_TRACK, request, timeout=TAP_TIMEOUT)
        except BusError as exc:  # the node ends an unheard tap after its RTCP timeout anyway
            log.info("tap stop not answered", error=str(exc), **self._fields)

    async def _finish(self, recorder: TrackRecorder, local: Path) -> None:
        self._close_media()
        summary = recorder.close()
        if summary.frames == 0:
            if self._end_reason == END_STOP:
                await self._send(ABORTED, error="Stop called before pipeline could start", error_code=412)
            else:
                await self._fail(f"no media recorded from track {self.request.track_id}", 500)
            return
        self.status = ENDING
        await self._send(ENDING, details=self._end_reason)
        location = await self.storage.upload(local, self.filename)
        ended = _now_ns()
        info = lk.FileInfo(
            filename=self.filename,
            started_at=self._started_ns,
            ended_at=ended,
            duration=int(summary.duration_s * 1e9),
            size=summary.size_bytes,
            location=location,
        )
        self.status = COMPLETE
        await self._send(COMPLETE, details=self._end_reason, files=[info])
        log.info(
            "track egress complete",
            file=self.filename,
            location=location,
            size=summary.size_bytes,
            duration_s=round(summary.duration_s, 3),
            **self._fields,
        )

    async def _fail(self, error: str, code: int) -> None:
        log.warning("track egress failed", error=error, **self._fields)
        self.status = FAILED
        await self._send(FAILED, error=error, error_code=code)

    async def _send(
        self,
        status: int,
        *,
        error: str = "",
        error_code: int = 0,
        details: str = "",
        files: list[lk.FileInfo] | None = None,
    ) -> None:
        report = eg.EgressReport(
            egress_id=self.egress_id,
            part=self.part,
            status=status,  # type: ignore[arg-type]
            error=error,
            error_code=error_code,
            details=details,
        )
        report.file_results.extend(files or [])
        await self._deliver(report)

    async def _deliver(self, report: eg.EgressReport) -> eg.ReportAck:
        """Send a report. The controller records a placement after the offer's answer, so a report
        sent at once may find the job not (yet) this worker's: ``unknown`` is asked again for
        ``PLACEMENT_GRACE_S`` after acceptance; later it means the job was taken away."""
        while True:
            ack = await self._reporter.send(report)
            if not ack.unknown or time.monotonic() - self._accepted_at > PLACEMENT_GRACE_S:
                if ack.unknown:
                    log.warning("report for a job no longer ours", status=report.status, **self._fields)
                return ack
            await asyncio.sleep(0.2)
            report = eg.EgressReport.FromString(report.SerializeToString())  # sent again: a new seq

    def _close_media(self) -> None:
        if self._receiver is not None:
            self._receiver.close()
