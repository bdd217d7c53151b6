"""Job leases: a worker renews each job it holds with every heartbeat; a part whose lease expired
continues as the next part on another worker (``retry_count`` = part; beyond LiveKit, which marks
the egress FAILED), or ends FAILED "worker lost" (503) when no worker takes it within
``egress.continue_timeout``. A stopped job's next part only finalizes what the lost part left.
Also forgets ended egresses after ``egress.ended_retention``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from parley.egress import infos
from parley.egress.config import EgressSection
from parley.egress.errors import NoWorker
from parley.egress.interfaces import EgressStore
from parley.egress.placement import Placer
from parley.egress.record import EgressRecord
from parley.observability import get_logger

log = get_logger("parley.egress.leases")

RETRY_INTERVAL_MS = 1000
"""A part no worker took is offered again this long after."""


class LeaseSweeper:
    def __init__(
        self,
        store: EgressStore,
        placer: Placer,
        section: EgressSection,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._placer = placer
        self._section = section
        self._on_commit = on_commit
        self._lease_ms = int(section.lease * 1000)
        self._claim_ms = int((section.offer_timeout * section.offer_rounds + 5) * 1000)

    async def run(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("egress lease sweep failed; retrying", error=str(exc))
            await asyncio.sleep(self._section.sweep_interval)

    async def sweep_once(self) -> None:
        now_ms = time.time_ns() // 1_000_000
        for egress_id in await self._store.claim_due(now_ms, self._claim_ms):
            await self._handle(egress_id)
        await self._store.forget_ended(now_ms - int(self._section.ended_retention * 1000))

    async def _handle(self, egress_id: str) -> None:
        now_ms = time.time_ns() // 1_000_000

        def expire(record: EgressRecord | None) -> tuple[EgressRecord | None, EgressRecord | None]:
            if record is None or infos.is_final(record.info.status):
                return None, None
            if record.worker_id and record.due_ms > now_ms:
                return None, None  # renewed meanwhile
            if record.worker_id:
                log.warning(
                    "egress worker lost; continuing as the next part",
                    egress_id=record.egress_id,
                    room=record.room_name,
                    worker=record.worker_id,
                    part=record.part + 1,
                )
                infos.worker_lost(record, time.time_ns())
            if record.stop_requested and record.info.status == infos.STARTING:
                infos.abort_before_start(record, time.time_ns())
            record.due_ms = now_ms + self._claim_ms
            return record, record

        record = await self._store.mutate(egress_id, expire)
        self._on_commit()
        if record is None or infos.is_final(record.info.status):
            return
        finalize = record.stop_requested or record.info.status == infos.ENDING
        try:
            worker_id, _ = await self._placer.place(record.job(finalize=finalize), rounds=1)
        except NoWorker:
            await self._not_placed(egress_id, record.part)
            return

        def take(r: EgressRecord | None) -> tuple[EgressRecord | None, None]:
            if r is None or r.worker_id or r.part != record.part or infos.is_final(r.info.status):
                return None, None
            infos.placed(r, worker_id, None, time.time_ns())
            r.due_ms = time.time_ns() // 1_000_000 + self._lease_ms
            return r, None

        await self._store.mutate(egress_id, take)

    async def _not_placed(self, egress_id: str, part: int) -> None:
        now_ns = time.time_ns()
        limit_ns = int(self._section.continue_timeout * 1e9)

        def retry_or_fail(r: EgressRecord | None) -> tuple[EgressRecord | None, None]:
            if r is None or r.worker_id or r.part != part or infos.is_final(r.info.status):
                return None, None
            if now_ns - r.lost_at_ns > limit_ns:
                log.warning("no worker took the next part; failed", egress_id=r.egress_id, room=r.room_name)
                infos.fail_lost(r, now_ns)
            else:
                r.due_ms = now_ns // 1_000_000 + RETRY_INTERVAL_MS
            return r, None

        await self._store.mutate(egress_id, retry_or_fail)
        self._on_commit()
