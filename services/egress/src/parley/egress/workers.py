"""The live egress workers as every controller sees them: their WorkerStats heartbeats (1 s), ranked
by free capacity; each heartbeat renews the leases of the jobs the worker holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from parley.bus import Bus, Delivery, Subscription, subjects
from parley.egress.interfaces import EgressStore
from parley.observability import get_logger
from parley.protocol.gen.egress.v1 import egress_pb2 as eg

log = get_logger("parley.egress.workers")


@dataclass(slots=True)
class WorkerView:
    stats: eg.WorkerStats
    seen: float
    """``time.monotonic()`` of its last heartbeat."""
    offered: float = 0.0
    """Cores of jobs this controller placed there since that heartbeat (not yet in ``pending``)."""

    def free(self, max_utilization: float) -> float:
        s = self.stats
        return s.capacity * max_utilization - s.used - s.pending - self.offered


class WorkerRegistry:
    def __init__(
        self,
        bus: Bus,
        store: EgressStore,
        *,
        ttl: float,
        lease: float,
        max_utilization: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._store = store
        self._ttl = ttl
        self._lease_ms = int(lease * 1000)
        self._max = max_utilization
        self._clock = clock
        self._workers: dict[str, WorkerView] = {}
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self._bus.subscribe(subjects.EGRESS_WORKERS, self._on_stats)

    async def aclose(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_stats(self, d: Delivery) -> None:
        stats = eg.WorkerStats.FromString(d.data)
        await self.heard(stats)

    async def heard(self, stats: eg.WorkerStats) -> None:
        if stats.worker_id not in self._workers:
            log.info("egress worker seen", worker=stats.worker_id, capacity=stats.capacity)
        self._workers[stats.worker_id] = WorkerView(stats, self._clock())
        if stats.jobs:
            deadline = int(time.time() * 1000) + self._lease_ms
            await self._store.renew(stats.worker_id, [j.egress_id for j in stats.jobs], deadline)

    def ranked(self, cost: float) -> list[str]:
        """Live, not draining workers with ``cost`` cores free, the most free first."""
        now = self._clock()
        for worker_id in [w for w, v in self._workers.items() if now - v.seen > self._ttl]:
            log.info("egress worker gone", worker=worker_id)
            del self._workers[worker_id]
        fits = [
            (view.free(self._max), worker_id)
            for worker_id, view in self._workers.items()
            if not view.stats.draining and view.free(self._max) >= cost
        ]
        return [worker_id for _, worker_id in sorted(fits, key=lambda f: (-f[0], f[1]))]

    def known(self, worker_id: str) -> bool:
        return worker_id in self._workers

    def note_offered(self, worker_id: str, cost: float) -> None:
        view = self._workers.get(worker_id)
        if view is not None:
            view.offered += cost
