"""Keeps room-state true: participant and track changes, sent in order by one worker."""

from __future__ import annotations

import asyncio

from google.protobuf.message import Message
from livekit.protocol import models

from parley.bus import Bus, BusError, subjects
from parley.observability import TaskSet, get_logger
from parley.protocol.gen.room.v1 import room_state_pb2 as rs

log = get_logger("parley.sfu.state")

TIMEOUT = 5.0


class StateReporter:
    def __init__(self, bus: Bus, tasks: TaskSet) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()
        tasks.spawn(self._run(), name="state-reporter")

    def _put(self, method: str, request: Message) -> None:
        self._queue.put_nowait((method, request))

    async def _run(self) -> None:
        while True:
            method, request = await self._queue.get()
            try:
                await self._bus.request(subjects.room_state_rpc(method), request, rs.Ack, timeout=TIMEOUT)
            except BusError as exc:
                log.warning("room-state update failed", method=method, error=str(exc))
            finally:
                self._queue.task_done()

    async def idle(self) -> None:
        """For draining: wait until every queued report was attempted."""
        await self._queue.join()

    def active(self, room: str, sid: str) -> None:
        self._put("ParticipantActive", rs.ParticipantActiveRequest(room_name=room, participant_sid=sid))

    def left(self, room: str, sid: str, reason: int) -> None:
        self._put(
            "ParticipantLeft",
            rs.ParticipantLeftRequest(room_name=room, participant_sid=sid, reason=reason),  # type: ignore[arg-type]
        )

    def participant_updated(self, room: str, info: models.ParticipantInfo) -> None:
        request = rs.ParticipantUpdatedRequest(room_name=room)
        request.participant.CopyFrom(info)
        self._put("ParticipantUpdated", request)

    def track_published(self, room: str, sid: str, track: models.TrackInfo) -> None:
        request = rs.TrackPublishedRequest(room_name=room, participant_sid=sid)
        request.track.CopyFrom(track)
        self._put("TrackPublished", request)

    def track_unpublished(self, room: str, sid: str, track_sid: str) -> None:
        self._put(
            "TrackUnpublished",
            rs.TrackUnpublishedRequest(room_name=room, participant_sid=sid, track_sid=track_sid),
        )

    def track_updated(self, room: str, sid: str, track: models.TrackInfo) -> None:
        request = rs.TrackUpdatedRequest(room_name=room, participant_sid=sid)
        request.track.CopyFrom(track)
        self._put("TrackUpdated", request)
