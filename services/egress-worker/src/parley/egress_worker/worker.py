"""The worker: takes jobs the controller offers by load, runs them, renews their leases.

* ``WorkerStats`` every ``stats_interval`` on ``parley.egress.workers``: capacity (cores), used (this
  process tree's CPU over the last interval), pending (cost of jobs accepted and not yet measured:
  their first 5 s), draining, and the jobs held (the controller renews their leases from it).
* OfferEgress (topic = this worker's id): refused while draining (unavailable "server is shutting
  down"), for a request it cannot run (invalid_argument, the reason), past capacity * max
  utilisation (resource_exhausted "not enough CPU"); else accepted with the STARTING info, and the
  job starts.
* JobControl: stop (the job's ENDING/ABORTED info) or update_stream (invalid_argument: track egress
  does not stream).
* drain: no new jobs, running ones stopped and finished (uploaded, reported) before exit.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from livekit.protocol import egress as lk

from parley.bus import Binding, Bus, ErrorCode, Rpc, RpcError, Subscription, bind, rpcs, serve_all, subjects
from parley.egress_worker.capacity import CpuMeter, machine_cores
from parley.egress_worker.config import EgressWorkerSection
from parley.egress_worker.errors import UnsupportedRequest
from parley.egress_worker.reporter import Reporter
from parley.egress_worker.track_job import TrackJob
from parley.observability import TaskSet, get_logger
from parley.protocol.gen.egress.v1 import egress_pb2 as eg

log = get_logger("parley.egress_worker")

SERVES: tuple[Rpc[Any, Any], ...] = (rpcs.OFFER_EGRESS, rpcs.EGRESS_JOB_CONTROL)
"""Served on this worker's own subjects (topic = worker id)."""
PENDING_S = 5.0
"""Seconds a new job's cost counts as pending (until its load shows in ``used``)."""


class EgressWorker:
    def __init__(self, bus: Bus, worker_id: str, section: EgressWorkerSection) -> None:
        self._bus = bus
        self.worker_id = worker_id
        self._section = section
        self.capacity = section.capacity or machine_cores()
        self._meter = CpuMeter()
        self.used = 0.0
        self.reporter = Reporter(bus, worker_id, timeout=section.report_timeout)
        self.jobs: dict[str, TrackJob] = {}
        self._accepted_at: dict[str, tuple[float, float]] = {}
        """egress id -> (accepted at, cost)."""
        self._tasks = TaskSet("egress-worker")
        self._job_tasks: dict[str, asyncio.Task[None]] = {}
        self._subs: list[Subscription] = []
        self.draining = False
        self._lock = asyncio.Lock()

    def routes(self) -> list[Binding]:
        return [bind(rpcs.OFFER_EGRESS, self.offer), bind(rpcs.EGRESS_JOB_CONTROL, self.control)]

    async def start(self) -> None:
        self._subs = await serve_all(self._bus, SERVES, self.routes(), topic=self.worker_id)
        await self.beat()
        self._tasks.spawn(self._heartbeats(), name="egress-worker-stats")
        log.info("egress worker ready", worker=self.worker_id, capacity=self.capacity)

    # -- capacity ---------------------------------------------------------------------------------
    def pending(self) -> float:
        now = time.monotonic()
        return sum(cost for at, cost in self._accepted_at.values() if now - at < PENDING_S)

    def free(self) -> float:
        return self.capacity * self._section.max_cpu_utilization - self.used - self.pending()

    async def beat(self) -> None:
        stats = eg.WorkerStats(
            worker_id=self.worker_id,
            capacity=self.capacity,
            used=self.used,
            pending=self.pending(),
            draining=self.draining,
            sent_at_ms=int(time.time() * 1000),
        )
        stats.jobs.extend(eg.WorkerJob(egress_id=e, part=j.part) for e, j in self.jobs.items())
        await self._bus.publish(subjects.EGRESS_WORKERS, stats)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._section.stats_interval)
            self.used = self._meter.sample()
            try:
                await self.beat()
            except Exception as exc:  # the bus reconnects; the next beat renews the leases
                log.warning("worker stats not sent", error=str(exc))

    # -- RPCs -------------------------------------------------------------------------------------
    async def offer(self, job: eg.EgressJob) -> eg.OfferResult:
        async with self._lock:
            if self.draining:
                return eg.OfferResult(error_code=ErrorCode.UNAVAILABLE.value, error="server is shutting down")
            if job.egress_id in self.jobs:
                return eg.OfferResult(accepted=True, info=self.jobs[job.egress_id].starting_info())
            if job.finalize:
                return self._finalize(job)
            try:
                running = TrackJob(job, self._section, self._bus, self.reporter)
            except UnsupportedRequest as exc:
                return eg.OfferResult(error_code=ErrorCode.INVALID_ARGUMENT.value, error=str(exc))
            if job.cost > self.free():
                return eg.OfferResult(error_code=ErrorCode.RESOURCE_EXHAUSTED.value, error="not enough CPU")
            self.jobs[job.egress_id] = running
            self._accepted_at[job.egress_id] = (time.monotonic(), job.cost)
            self._job_tasks[job.egress_id] = self._tasks.spawn(
                self._run(running), name=f"egress-{job.egress_id}"
            )
        log.info(
            "egress job accepted", egress_id=job.egress_id, part=job.part, room=running.request.room_name
        )
        return eg.OfferResult(accepted=True, info=running.starting_info())

    def _finalize(self, job: eg.EgressJob) -> eg.OfferResult:
        """A job stopped while its worker was lost: finish that worker's part (its file, when
        recorded in place) and end the job COMPLETE."""
        try:
            part = TrackJob(job, self._section, self._bus, self.reporter)
        except UnsupportedRequest as exc:
            return eg.OfferResult(error_code=ErrorCode.INVALID_ARGUMENT.value, error=str(exc))

        async def finalize() -> None:
            await part.finish_previous()
            report = eg.EgressReport(
                egress_id=job.egress_id,
                part=job.part,
                status=lk.EgressStatus.EGRESS_COMPLETE,
                details="End reason: StopEgress API",
            )
            await self.reporter.send(report)

        self._tasks.spawn(finalize(), name=f"egress-finalize-{job.egress_id}")
        return eg.OfferResult(accepted=True, info=job.info)

    async def _run(self, job: TrackJob) -> None:
        try:
            await job.run()
        finally:
            self.jobs.pop(job.egress_id, None)
            self._accepted_at.pop(job.egress_id, None)
            self._job_tasks.pop(job.egress_id, None)

    async def control(self, control: eg.JobControl) -> lk.EgressInfo:
        job = self.jobs.get(control.egress_id)
        if job is None:
            raise RpcError(ErrorCode.NOT_FOUND, "egress does not exist")
        if control.HasField("update_stream"):
            raise RpcError(ErrorCode.INVALID_ARGUMENT, "UpdateStream called on non-streaming egress")
        return job.stop()

    # -- lifecycle --------------------------------------------------------------------------------
    async def drain(self) -> None:
        """Refuse new jobs; stop the running ones and wait until each is stored and reported."""
        self.draining = True
        for job in list(self.jobs.values()):
            job.stop()
        running = list(self._job_tasks.values())
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        await self.beat()

    async def aclose(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
        await self._tasks.aclose()
