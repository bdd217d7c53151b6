"""A test double of an egress worker (``services/egress-worker`` does not exist yet): it sends
WorkerStats, answers offers (accept, or refuse with a code) and job controls, and sends reports.
Unit tests only: integration tests may not use it."""

from __future__ import annotations

from dataclasses import dataclass, field

from livekit.protocol import egress as lk

from parley.bus import Bus, ErrorCode, Subscription, rpcs, subjects
from parley.protocol.gen.egress.v1 import egress_pb2 as eg


@dataclass
class FakeWorker:
    bus: Bus
    worker_id: str
    capacity: float = 8.0
    refuse: str = ""
    """A Twirp code to refuse offers with ("" accepts)."""
    refuse_message: str = "not enough CPU"
    draining: bool = False
    offers: list[eg.EgressJob] = field(default_factory=list)
    controls: list[eg.JobControl] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)
    """egress id -> part held."""
    seq: int = 0
    _subs: list[Subscription] = field(default_factory=list)

    async def start(self) -> None:
        self._subs.append(await self.bus.serve(rpcs.OFFER_EGRESS, self._offer, topic=self.worker_id))
        self._subs.append(await self.bus.serve(rpcs.EGRESS_JOB_CONTROL, self._control, topic=self.worker_id))
        await self.beat()

    async def stop(self) -> None:
        """The worker dies: no answers, no heartbeats."""
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()

    async def beat(self) -> None:
        stats = eg.WorkerStats(worker_id=self.worker_id, capacity=self.capacity, draining=self.draining)
        stats.jobs.extend(eg.WorkerJob(egress_id=e, part=p) for e, p in self.jobs.items())
        await self.bus.publish(subjects.EGRESS_WORKERS, stats)

    async def _offer(self, job: eg.EgressJob) -> eg.OfferResult:
        self.offers.append(job)
        if self.refuse:
            return eg.OfferResult(accepted=False, error_code=self.refuse, error=self.refuse_message)
        self.jobs[job.egress_id] = job.part
        return eg.OfferResult(accepted=True, info=job.info)

    async def _control(self, control: eg.JobControl) -> lk.EgressInfo:
        self.controls.append(control)
        if control.HasField("update_stream"):
            return lk.EgressInfo(
                egress_id=control.egress_id,
                status=lk.EgressStatus.EGRESS_ACTIVE,
                stream_results=[lk.StreamInfo(url=u) for u in control.update_stream.add_output_urls],
            )
        return lk.EgressInfo(
            egress_id=control.egress_id,
            status=lk.EgressStatus.EGRESS_ENDING,
            details="End reason: StopEgress API",
        )

    async def report(self, egress_id: str, status: int, **fields: object) -> eg.ReportAck:
        self.seq += 1
        report = eg.EgressReport(
            worker_id=self.worker_id,
            seq=self.seq,
            egress_id=egress_id,
            part=self.jobs.get(egress_id, 0),
            status=status,  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        )
        return await self.bus.call(rpcs.EGRESS_REPORT, report, timeout=2.0)


ACCEPTS = ""
BUSY = ErrorCode.RESOURCE_EXHAUSTED.value
