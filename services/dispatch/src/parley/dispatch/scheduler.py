"""Getting jobs onto workers: offers in weighted order, retries until the job's deadline,
and the sweeps that pick up what a crashed instance or a lost worker left behind."""

from __future__ import annotations

import asyncio

from livekit.protocol import agent, agent_dispatch, models

from parley.bus import Bus, BusError, rpcs
from parley.dispatch import outbound
from parley.dispatch.config import DispatchConfig
from parley.dispatch.connections import Connections
from parley.dispatch.ids import JobID
from parley.dispatch.jobs import Jobs, new_job, now_ns
from parley.dispatch.selection import eligible, weighted_order
from parley.dispatch.store import TERMINAL, Store
from parley.observability import TaskSet, get_logger
from parley.protocol.gen.dispatch.v1 import dispatch_pb2 as pb
from parley.protocol.ids import now_ms

log = get_logger("parley.dispatch.scheduler")


class Scheduler:
    def __init__(
        self, config: DispatchConfig, bus: Bus, store: Store, jobs: Jobs, connections: Connections
    ) -> None:
        self._section = config.dispatch
        self._threshold = config.dispatch.threshold(config.development)
        self._bus = bus
        self._store = store
        self._jobs = jobs
        self._connections = connections
        self._tasks = TaskSet("dispatch.scheduler")
        self._inflight: set[str] = set()

    @property
    def _lease_ms(self) -> int:
        return int(self._section.lease * 1000)

    # launching ---------------------------------------------------------------------------------
    async def launch(
        self,
        d: agent_dispatch.AgentDispatch,
        job_type: agent.JobType,
        room: models.Room,
        participant: models.ParticipantInfo | None = None,
        *,
        explicit: bool = False,
    ) -> agent.Job | None:
        """Create the dispatch's job of ``job_type`` and start offering it.

        Automatic jobs (and participant/publisher jobs) start only when some worker
        registered for them; an explicit room job waits for one until its deadline.
        """
        wanted = explicit and job_type == agent.JobType.JT_ROOM
        if not wanted and await self._store.pool_size(job_type, d.agent_name) == 0:
            return None
        job = new_job(d, job_type, room, participant)
        now = now_ms()
        await self._store.put_job(job, deadline_ms=now + int(self._section.job_deadline * 1000))
        await self._store.schedule(job.id, now + self._lease_ms)
        log.info(
            "job created",
            room=job.room.name,
            job=job.id,
            dispatch=d.id,
            agent_name=d.agent_name,
            job_type=agent.JobType.Name(job_type),
        )
        self._spawn_attempt(JobID(job.id), (job, now + int(self._section.job_deadline * 1000)))
        return job

    def _spawn_attempt(self, jid: JobID, known: tuple[agent.Job, int] | None = None) -> None:
        if jid in self._inflight:
            return
        self._inflight.add(jid)
        task = self._tasks.spawn(self.attempt(jid, known), name=f"offer:{jid}")
        task.add_done_callback(lambda _: self._inflight.discard(jid))

    # one round of offers -----------------------------------------------------------------------
    async def attempt(self, jid: JobID, known: tuple[agent.Job, int] | None = None) -> None:
        """One round of offers; ``known`` is the job as just stored (saves reading it back)."""
        got = known or await self._store.get_job(jid)
        if got is None:
            await self._store.unschedule(jid)
            return
        job, deadline = got
        if job.state.status in TERMINAL:
            await self._store.unschedule(jid)
            return
        resuming = False
        if job.state.status == agent.JobStatus.JS_RUNNING:
            if job.state.worker_id and await self._store.get_worker(job.state.worker_id) is not None:
                await self._store.unschedule(jid)  # its worker came back (migrate_job)
                return
            log.info("dispatching again", room=job.room.name, job=jid, lost_worker=job.state.worker_id)
            resuming = True
            job.state.status = agent.JobStatus.JS_PENDING
            job.state.worker_id = ""
            job.state.reason = agent.JobStateReason.JSR_RETRYING
            job.state.updated_at = now_ns()
            await self._store.put_job(job)
        if deadline and now_ms() > deadline:
            await self._jobs.end(
                job,
                agent.JobStatus.JS_FAILED,
                f"no worker accepted the job within {self._section.job_deadline:g}s",
                agent.JobStateReason.JSR_NO_CAPACITY,
            )
            return
        if await self._offer_round(job, resuming):
            return
        await self._store.schedule(jid, now_ms() + int(self._section.retry_interval * 1000))

    async def _offer_round(self, job: agent.Job, resuming: bool) -> bool:
        """Offer ``job`` to each eligible worker in turn; True once it is settled."""
        now = now_ms()
        pool = [w for w in await self._store.pool(job.type, job.agent_name) if w.matches(job)]
        timeout_ms = int(self._section.worker_timeout * 1000)
        candidates = eligible(pool, self._threshold, now, timeout_ms)
        if not candidates:
            log.info("no worker available for the job", room=job.room.name, job=job.id, registered=len(pool))
        for worker in weighted_order(candidates):
            await self._store.schedule(job.id, now_ms() + self._lease_ms)
            request = pb.OfferJobRequest(worker_id=worker.worker_id, resuming=resuming)
            request.job.CopyFrom(job)
            try:
                if self._connections.owns(worker.worker_id):  # this instance holds it: no bus hop
                    answer = await self._connections.offer(request)
                else:
                    answer = await self._bus.call(
                        rpcs.OFFER_JOB,
                        request,
                        topic=worker.owner,
                        timeout=self._section.availability_timeout + 5.0,
                    )
            except BusError as exc:
                log.warning(
                    "offer failed", room=job.room.name, job=job.id, worker=worker.worker_id, error=str(exc)
                )
                continue
            if answer.accepted:
                return True
            if answer.terminate:
                await self._jobs.end(job, agent.JobStatus.JS_FAILED, "the worker refused the job (terminate)")
                return True
            log.info(
                "offer declined",
                room=job.room.name,
                job=job.id,
                worker=worker.worker_id,
                reason=answer.reason,
            )
        return False

    # sweeps --------------------------------------------------------------------------------------
    async def run_sweeps(self) -> None:
        """Every instance: claim due jobs (retries, lost workers' jobs, crashed offers)."""
        while True:
            try:
                for jid in await self._store.claim_due(now_ms(), self._lease_ms):
                    self._spawn_attempt(jid)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("job sweep failed", error=str(exc))
            await asyncio.sleep(self._section.sweep_interval)

    async def run_reaper(self) -> None:
        """Every instance: a worker not heard from within worker_timeout is dead."""
        timeout_ms = int(self._section.worker_timeout * 1000)
        while True:
            await asyncio.sleep(min(2.0, self._section.worker_timeout / 4))
            try:
                now = now_ms()
                for wid in await self._store.worker_ids():
                    rec = await self._store.get_worker(wid)
                    if rec is not None and now - rec.updated_ms <= timeout_ms:
                        continue
                    self._connections.forget(wid)
                    if rec is not None:  # alive but silent: drop its socket too
                        await outbound.close(self._bus, rec.reply_subject, rec.connection_id)
                    await self._jobs.worker_lost(wid, 0.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("worker reaper failed", error=str(exc))

    async def aclose(self) -> None:
        await self._tasks.aclose()
