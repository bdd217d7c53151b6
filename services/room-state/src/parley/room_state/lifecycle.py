"""Room deadlines (empty_timeout, departure_timeout) enforced from Redis.

Each room's deadline sits in a sorted set. Every instance scans it; ``claim_due`` moves a
due entry forward by a lease in one Lua call, so one instance handles it, and a restarted or
second instance picks up whatever was left. The close itself re-checks the room under WATCH.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from parley.observability import get_logger
from parley.protocol.ids import now_ms
from parley.room_state import rooms
from parley.room_state.store import Store

log = get_logger("parley.room_state.lifecycle")

OnClosed = Callable[[rooms.Closed], Awaitable[None]]


class Lifecycle:
    def __init__(self, store: Store, on_closed: OnClosed, *, interval: float, lease: float) -> None:
        self._store = store
        self._on_closed = on_closed
        self._interval = interval
        self._lease_ms = int(lease * 1000)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("room deadline scan failed; retrying", error=str(exc))

    async def tick(self) -> int:
        """Handle every due deadline; returns how many rooms closed."""
        closed_count = 0
        for name in await self._store.claim_due(now_ms(), self._lease_ms):
            closed, exists = await self._store.mutate(name, rooms.close_if_due(now_ms()))
            if not exists:
                await self._store.drop_timer(name)
            elif closed is not None:
                closed_count += 1
                log.info("room closed: empty", room=name, room_sid=closed.room.sid)
                await self._on_closed(closed)
        return closed_count
