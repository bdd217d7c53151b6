"""Reports to the controller (EgressReport), delivered at least once.

Each report carries this worker's increasing ``seq``, so a report the controller applied and whose
answer was lost is a no-op when it comes again. A report is retried (backoff up to 2 s) until a
controller answers or ``give_up`` seconds pass: a controller restart delays reports, never loses
them. The answer says whether the job should stop (``stop``) or is no longer this worker's
(``unknown``).
"""

from __future__ import annotations

import asyncio
import itertools
import time

from parley.bus import Bus, BusError, rpcs
from parley.observability import get_logger
from parley.protocol.gen.egress.v1 import egress_pb2 as eg

log = get_logger("parley.egress_worker.reporter")


class Reporter:
    def __init__(self, bus: Bus, worker_id: str, *, timeout: float = 3.0, give_up: float = 120.0) -> None:
        self._bus = bus
        self.worker_id = worker_id
        self._seq = itertools.count(int(time.time() * 1000) << 8)  # increasing across restarts too
        self._timeout = timeout
        self._give_up = give_up

    async def send(self, report: eg.EgressReport) -> eg.ReportAck:
        report.worker_id = self.worker_id
        report.seq = next(self._seq)
        deadline = time.monotonic() + self._give_up
        delay = 0.1
        while True:
            try:
                return await self._bus.call(rpcs.EGRESS_REPORT, report, timeout=self._timeout)
            except (BusError, TimeoutError) as exc:
                if isinstance(exc, BusError) and not exc.retryable:
                    log.error("report refused", egress_id=report.egress_id, error=str(exc))
                    return eg.ReportAck()
                if time.monotonic() + delay > deadline:
                    log.error(
                        "report not delivered",
                        egress_id=report.egress_id,
                        status=report.status,
                        error=str(exc),
                    )
                    return eg.ReportAck()
                log.warning("report retried", egress_id=report.egress_id, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
