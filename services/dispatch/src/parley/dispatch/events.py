"""agent_job_started / agent_job_ended RoomEvents, on the room's event subject (JetStream)."""

from __future__ import annotations

from livekit.protocol import agent

from parley.bus import NatsBus, subjects
from parley.observability import get_logger
from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent
from parley.protocol.ids import EVENT_PREFIX, new_id, now_ms

log = get_logger("parley.dispatch.events")

JOB_STARTED = "agent_job_started"
JOB_ENDED = "agent_job_ended"


class JobEvents:
    def __init__(self, bus: NatsBus, node_id: str) -> None:
        self._bus = bus
        self._node_id = node_id

    async def publish(self, name: str, job: agent.Job) -> None:
        ms = now_ms()
        event = RoomEvent(id=new_id(EVENT_PREFIX), event=name, created_at=ms // 1000, created_at_ms=ms)
        event.room.CopyFrom(job.room)
        event.job.CopyFrom(job)
        event.node_id = self._node_id
        if job.HasField("participant"):
            event.participant.CopyFrom(job.participant)
        try:
            await self._bus.publish_durable(subjects.room_events(job.room.name), event, msg_id=event.id)
        except Exception as exc:  # the job goes on; the event is lost, say so
            log.error("cannot publish job event", room=job.room.name, job=job.id, kind=name, error=str(exc))
