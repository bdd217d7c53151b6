"""Keeps room-state true: participant and track changes, delivered at least once and in order.

Every change becomes an ``SfuReport`` (this process's ``reporter_id`` and an increasing ``seq``) on
one queue, sent by one worker to room-state's ``Report`` method. A report that fails for a reason
that may pass (room-state, Valkey or NATS down, a timeout) is retried with backoff until it lands;
the reports behind it wait, so room-state sees every participant's changes in the order they
happened (a late ``participant_active`` never overtakes the ``participant_left`` that followed it).
room-state keeps the last applied ``seq`` per reporter in each room, so a report retried after its
answer was lost applies once. A report room-state refuses for good (the room or participant is
gone: NOT_FOUND, a malformed request) is dropped and logged.

``sessions`` queues a ``NodeSessions`` snapshot behind the pending reports: it is taken when queued,
so room-state compares it with a state that already holds every earlier change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from google.protobuf.message import Message
from livekit.protocol import models

from parley.bus import Bus, BusError, ErrorCode, rpcs
from parley.observability import TaskSet, get_logger
from parley.protocol.gen.room.v1 import room_state_pb2 as rs
from parley.protocol.ids import new_id

log = get_logger("parley.sfu.state")

TIMEOUT = 5.0
"""Seconds to wait for room-state's answer to one attempt."""
RETRY_MIN = 0.1
"""Seconds before the first retry; doubled per failure up to ``retry_max``."""
REPORTER_PREFIX = "SR_"

FINAL = frozenset(
    {
        ErrorCode.NOT_FOUND,
        ErrorCode.INVALID_ARGUMENT,
        ErrorCode.MALFORMED,
        ErrorCode.FAILED_PRECONDITION,
        ErrorCode.ALREADY_EXISTS,
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.UNAUTHENTICATED,
        ErrorCode.RESOURCE_EXHAUSTED,
        ErrorCode.UNIMPLEMENTED,
    }
)
"""Answers that a retry cannot change: the report is dropped."""

Snapshot = Callable[[], rs.NodeSessions]


class StateReporter:
    def __init__(self, bus: Bus, tasks: TaskSet, *, retry_max: float = 2.0, timeout: float = TIMEOUT) -> None:
        self._bus = bus
        self._retry_max = retry_max
        self._timeout = timeout
        self.reporter_id = new_id(REPORTER_PREFIX)
        self._seq = 0
        self._queue: asyncio.Queue[rs.SfuReport] = asyncio.Queue()
        self._sessions_queued = False
        self._pending = 0
        self.retries = 0
        """Attempts that failed and were retried (for tests and metrics)."""
        tasks.spawn(self._run(), name="state-reporter")

    @property
    def pending(self) -> int:
        """Reports queued or in flight."""
        return self._pending

    def _put(self, field: str, request: Message) -> None:
        self._seq += 1
        report = rs.SfuReport(reporter_id=self.reporter_id, seq=self._seq)
        getattr(report, field).CopyFrom(request)
        self._pending += 1
        self._queue.put_nowait(report)

    async def _run(self) -> None:
        while True:
            report = await self._queue.get()
            try:
                await self._deliver(report)
            finally:
                if report.WhichOneof("report") == "node_sessions":
                    self._sessions_queued = False
                self._pending -= 1
                self._queue.task_done()

    async def _deliver(self, report: rs.SfuReport) -> None:
        kind = report.WhichOneof("report")
        delay = RETRY_MIN
        failures = 0
        while True:
            try:
                result = await self._bus.call(rpcs.REPORT, report, timeout=self._timeout)
            except BusError as exc:
                if exc.code in FINAL:
                    log.info(
                        "room-state refused a report; dropped", report=kind, seq=report.seq, error=str(exc)
                    )
                    return
                error = str(exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS disconnected, closing, ...
                error = f"{type(exc).__name__}: {exc}"
            else:
                if failures:
                    log.info("room-state report delivered after retries", report=kind, attempts=failures + 1)
                self._on_result(result)
                return
            failures += 1
            self.retries += 1
            if failures == 1 or failures % 20 == 0:
                log.warning(
                    "room-state update failed; retrying",
                    report=kind,
                    seq=report.seq,
                    attempts=failures,
                    queued=self._queue.qsize(),
                    error=error,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max)

    def _on_result(self, result: rs.ReconcileResult) -> None:
        for room in result.removed:
            log.warning(
                "room-state dropped participants this node does not hold",
                room=room.room_name,
                participants=list(room.participant_sids),
            )
        for room in result.unknown:
            log.warning(
                "this node holds sessions room-state does not know",
                room=room.room_name,
                participants=list(room.participant_sids),
            )

    async def idle(self) -> None:
        """For draining: wait until every queued report was delivered or dropped."""
        await self._queue.join()

    def sessions(self, snapshot: Snapshot) -> None:
        """Queue the node's sessions for reconciling (skipped while one is still queued)."""
        if self._sessions_queued:
            return
        self._sessions_queued = True
        self._put("node_sessions", snapshot())

    def active(self, room: str, sid: str) -> None:
        self._put("participant_active", rs.ParticipantActiveRequest(room_name=room, participant_sid=sid))

    def left(self, room: str, sid: str, reason: int) -> None:
        self._put(
            "participant_left",
            rs.ParticipantLeftRequest(room_name=room, participant_sid=sid, reason=reason),  # type: ignore[arg-type]
        )

    def participant_updated(
        self, room: str, sid: str, *, name: str, metadata: str, attributes: Mapping[str, str]
    ) -> None:
        """A delta (LiveKit's semantics: empty name/metadata keep, an empty attribute value deletes);
        room-state owns the record and its version."""
        request = rs.ParticipantUpdatedRequest(
            room_name=room, participant_sid=sid, name=name, metadata=metadata, attributes=attributes
        )
        self._put("participant_updated", request)

    def track_published(self, room: str, sid: str, track: models.TrackInfo) -> None:
        request = rs.TrackPublishedRequest(room_name=room, participant_sid=sid)
        request.track.CopyFrom(track)
        self._put("track_published", request)

    def track_unpublished(self, room: str, sid: str, track_sid: str) -> None:
        self._put(
            "track_unpublished",
            rs.TrackUnpublishedRequest(room_name=room, participant_sid=sid, track_sid=track_sid),
        )

    def track_updated(self, room: str, sid: str, track_sid: str, muted: bool) -> None:
        """The track was muted or unmuted here (a delta; room-state owns the record)."""
        self._put(
            "track_updated",
            rs.TrackUpdatedRequest(room_name=room, participant_sid=sid, track_sid=track_sid, muted=muted),
        )
