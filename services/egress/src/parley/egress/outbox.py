"""The outbox relay (as room-state's): publishes the stored egress RoomEvents to JetStream in
order, then removes them.

Entries are written in the same MULTI/EXEC as the change they describe. One relay at a
time (a Redis lock) publishes them in list order, so each room's events reach the stream in
sequence order. A crash between publish and removal republishes the entry; JetStream drops
the duplicate by its Nats-Msg-Id (the event id).
"""

from __future__ import annotations

import asyncio
import uuid

from parley.bus import DurablePublisher, subjects
from parley.egress.interfaces import EgressStore
from parley.observability import get_logger, wait_event

log = get_logger("parley.egress.outbox")

BATCH = 128


class OutboxRelay:
    def __init__(
        self, bus: DurablePublisher, store: EgressStore, *, interval: float, lock_ttl: float
    ) -> None:
        self._bus = bus
        self._store = store
        self._interval = interval
        self._lock_ttl_ms = int(lock_ttl * 1000)
        self._token = uuid.uuid4().hex
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            await wait_event(self._wake, self._interval)
            self._wake.clear()
            try:
                await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay failed; retrying", error=str(exc))
                await asyncio.sleep(self._interval)

    async def drain_once(self) -> int:
        """Publish everything in the outbox if this instance can hold the lock; returns the count."""
        published = 0
        if not await self._store.acquire_relay(self._token, self._lock_ttl_ms):
            return 0
        try:
            while True:
                events = await self._store.outbox_peek(BATCH)
                if not events:
                    return published
                for event in events:
                    await self._bus.publish_durable(
                        subjects.room_events(event.room.name), event, msg_id=event.id
                    )
                if not await self._store.outbox_trim(len(events), self._token, self._lock_ttl_ms):
                    log.warning("outbox relay lost its lock; another instance continues")
                    return published
                published += len(events)
        finally:
            await self._store.release_relay(self._token)

    async def flush(self) -> None:
        """Best effort at shutdown: publish what is left."""
        try:
            await self.drain_once()
        except Exception as exc:
            log.warning("outbox flush at shutdown failed; the next instance relays it", error=str(exc))
