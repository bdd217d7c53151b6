"""Job lifecycle shared by every path: create, end, terminate, requeue a lost worker's jobs."""

from __future__ import annotations

import time

from livekit.protocol import agent, agent_dispatch, models

from parley.bus import Bus
from parley.dispatch import outbound
from parley.dispatch.events import JOB_ENDED, JobEvents
from parley.dispatch.ids import JobID
from parley.dispatch.store import TERMINAL, Store
from parley.observability import get_logger
from parley.protocol.ids import JOB_PREFIX, new_id, now_ms

log = get_logger("parley.dispatch.jobs")


def now_ns() -> int:
    return time.time_ns()


def new_job(
    d: agent_dispatch.AgentDispatch,
    job_type: agent.JobType,
    room: models.Room,
    participant: models.ParticipantInfo | None = None,
) -> agent.Job:
    job = agent.Job(
        id=new_id(JOB_PREFIX),
        dispatch_id=d.id,
        type=job_type,
        agent_name=d.agent_name,
        metadata=d.metadata,
        deployment=d.deployment,
    )
    job.room.CopyFrom(room)
    job.room.name = job.room.name or d.room
    if participant is not None:
        job.participant.CopyFrom(participant)
    job.attributes.update(d.attributes)
    job.state.status = agent.JobStatus.JS_PENDING
    job.state.updated_at = now_ns()
    return job


class Jobs:
    def __init__(self, store: Store, bus: Bus, events: JobEvents) -> None:
        self.store = store
        self.bus = bus
        self.events = events

    async def end(
        self,
        job: agent.Job,
        status: agent.JobStatus,
        error: str = "",
        reason: agent.JobStateReason = agent.JobStateReason.JSR_UNSPECIFIED,
    ) -> None:
        """Move ``job`` to a terminal status (once) and announce agent_job_ended."""
        if job.state.status in TERMINAL:
            return
        ns = now_ns()
        job.state.status = status
        job.state.error = error or job.state.error
        job.state.ended_at = ns
        job.state.updated_at = ns
        if reason:
            job.state.reason = reason
        await self.store.put_job(job)
        await self.store.unschedule(job.id)
        if job.state.worker_id:
            await self.store.detach_job(job.state.worker_id, job.id)
        log.info(
            "job ended",
            room=job.room.name,
            job=job.id,
            status=agent.JobStatus.Name(status),
            error=job.state.error,
        )
        await self.events.publish(JOB_ENDED, job)

    async def terminate(self, job: agent.Job, reason: agent.JobStateReason, status: agent.JobStatus) -> None:
        """Stop a job: tell its worker (if it runs) and end it."""
        if job.state.status in TERMINAL:
            return
        if job.state.status == agent.JobStatus.JS_RUNNING and job.state.worker_id:
            rec = await self.store.get_worker(job.state.worker_id)
            if rec is not None:
                msg = agent.ServerMessage(termination=agent.JobTermination(job_id=job.id))
                await outbound.send_to_worker(self.bus, rec, msg)
        await self.end(job, status, reason=reason)

    async def worker_lost(self, worker_id: str, grace: float) -> None:
        """The worker is gone: its unfinished jobs go to another worker after ``grace``
        (unless the worker reconnects and migrates them first)."""
        job_ids: list[JobID] = await self.store.remove_worker(worker_id)
        due = now_ms() + int(grace * 1000)
        for jid in job_ids:
            got = await self.store.get_job(jid)
            if got is None or got[0].state.status in TERMINAL:
                continue
            await self.store.schedule(jid, due)
        log.info("worker lost", worker=worker_id, jobs=len(job_ids))
