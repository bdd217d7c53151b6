"""Notices that an edge died: its signalling connections count as closed.

A SIGKILLed edge never sends the ``closed`` ClientSignal, and frames published to its subject vanish
without an error. Every ``sfu.edge_check_interval`` the node probes each edge that holds one of its
live signalling connections with a request on ``parley.edge.<id>.signal``: a live edge's relay takes
the (empty) frame and never answers (the probe times out: alive), while a subject nobody subscribes
to gets NATS's immediate no-responders (gone). An edge gone on ``MISSES`` probes in a row is dead:
each of its participants goes through ``Room.signal_lost`` (kept ``sfu.resume_window`` for a resume
through another edge, then removed with SIGNAL_CLOSE). Any other error (NATS down) proves nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from parley.bus import Bus, NoResponders, subjects
from parley.observability import get_logger
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.sfu.participant import Participant
from parley.sfu.room import Job, Room

log = get_logger("parley.sfu.edge_watch")

MISSES = 2
"""Consecutive no-responders answers that make an edge dead."""
PROBE_TIMEOUT = 0.5
"""Seconds a probe waits; a live edge never answers, so this is how long each probe takes."""


class EdgeWatch:
    def __init__(self, bus: Bus, rooms: Callable[[], Iterable[Room]], interval: float) -> None:
        self._bus = bus
        self._rooms = rooms
        self._interval = interval
        self._misses: dict[str, int] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:
                log.exception("edge liveness check failed")

    def _edges(self) -> set[str]:
        """Edges holding a live signalling connection of this node's participants."""
        return {
            p.edge_id
            for room in self._rooms()
            for p in room.participants.values()
            if p.edge_id and not p.closed and p.signal_lost_at is None
        }

    async def check(self) -> list[str]:
        """Probe every edge once; returns the edges found dead this round."""
        edges = sorted(self._edges())
        for stale in set(self._misses) - set(edges):
            del self._misses[stale]
        results = await asyncio.gather(*(self._gone(edge) for edge in edges))
        dead = []
        for edge, gone in zip(edges, results, strict=True):
            self._misses[edge] = self._misses.get(edge, 0) + 1 if gone else 0
            if self._misses[edge] >= MISSES:
                dead.append(edge)
                del self._misses[edge]
                self._signal_lost(edge)
        return dead

    async def _gone(self, edge_id: str) -> bool:
        try:
            await self._bus.request(
                subjects.edge_signal(edge_id),
                relay_pb2.ServerSignal(),
                relay_pb2.ServerSignal,
                timeout=PROBE_TIMEOUT,
            )
        except NoResponders:
            return True
        except Exception:
            return False  # timed out (alive: it never answers) or NATS trouble (unknown)
        return False

    def _signal_lost(self, edge_id: str) -> None:
        count = 0
        for room in list(self._rooms()):
            for p in list(room.participants.values()):
                if p.edge_id != edge_id or p.closed or p.signal_lost_at is not None:
                    continue
                count += 1

                room.submit(_lost_job(room, p, edge_id))
        log.warning("edge gone; its signalling connections count as closed", edge=edge_id, participants=count)


def _lost_job(room: Room, p: Participant, edge_id: str) -> Job:
    async def lost() -> None:
        # still on the dead edge (not resumed elsewhere meanwhile) and not already waiting
        if room.participants.get(p.sid) is p and p.edge_id == edge_id and p.signal_lost_at is None:
            await room.signal_lost(p)

    return lost
