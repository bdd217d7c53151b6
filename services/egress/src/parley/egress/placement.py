"""Job placement by load offers: the job goes to the worker with the most free capacity that fits
its cost; that worker re-checks under its own lock and accepts (its STARTING info) or refuses
(``resource_exhausted`` "not enough CPU", ``unavailable`` while draining), and then the next worker
is asked. After ``offer_rounds`` rounds the answer is LiveKit's ``unavailable`` "no response from
servers" (``NoWorker``). A worker's ``invalid_argument`` (a request it cannot run) is final."""

from __future__ import annotations

import asyncio

from livekit.protocol import egress as lk

from parley.bus import Bus, BusError, ErrorCode, RpcError, rpcs
from parley.egress.errors import NoWorker
from parley.egress.workers import WorkerRegistry
from parley.observability import get_logger
from parley.protocol.gen.egress.v1 import egress_pb2 as eg

log = get_logger("parley.egress.placement")

ROUND_BACKOFF = 0.2
"""Seconds before the second round (doubling): a worker that just started may have been seen."""


class Placer:
    def __init__(self, bus: Bus, workers: WorkerRegistry, *, offer_timeout: float, rounds: int) -> None:
        self._bus = bus
        self._workers = workers
        self._timeout = offer_timeout
        self._rounds = rounds

    async def place(self, job: eg.EgressJob, rounds: int | None = None) -> tuple[str, lk.EgressInfo | None]:
        """The worker that accepted ``job`` and its info; ``NoWorker`` if none did."""
        for attempt in range(rounds or self._rounds):
            if attempt:
                await asyncio.sleep(ROUND_BACKOFF * 2 ** (attempt - 1))
            for worker_id in self._workers.ranked(job.cost):
                result = await self._offer(worker_id, job)
                if result is not None and result.accepted:
                    self._workers.note_offered(worker_id, job.cost)
                    log.info(
                        "egress job placed",
                        egress_id=job.egress_id,
                        room=job.info.room_name,
                        worker=worker_id,
                        part=job.part,
                    )
                    return worker_id, result.info if result.HasField("info") else None
        log.info("no egress worker took the job", egress_id=job.egress_id, room=job.info.room_name)
        raise NoWorker()

    async def _offer(self, worker_id: str, job: eg.EgressJob) -> eg.OfferResult | None:
        try:
            result = await self._bus.call(rpcs.OFFER_EGRESS, job, topic=worker_id, timeout=self._timeout)
        except BusError as exc:
            log.info("egress offer unanswered", egress_id=job.egress_id, worker=worker_id, error=str(exc))
            return None
        if not result.accepted:
            if result.error_code == ErrorCode.INVALID_ARGUMENT:
                raise RpcError(ErrorCode.INVALID_ARGUMENT, result.error)
            log.info(
                "egress offer refused",
                egress_id=job.egress_id,
                worker=worker_id,
                code=result.error_code,
                error=result.error,
            )
        return result
