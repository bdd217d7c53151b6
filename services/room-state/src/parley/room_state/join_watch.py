"""Rolls back a JoinRoom whose session never started because its node is gone.

JoinRoom commits the participant before the edge asks the node to start the session. When the node
died a moment earlier (its heartbeats still count it live for up to ``room_state.node_ttl``), the
start fails and the client gets an error, but the participant would stay until the node is evacuated.
``room_state.join_check_delay`` after each JoinRoom this instance handled, a participant that is
still not ACTIVE is checked against its node: a request on ``parley.sfu.<node>.sessions`` that gets
no responders means no process serves that node, so the join is rolled back (participant leaves with
JOIN_FAILURE; never ACTIVE, it yields ``participant_connection_aborted``). A node that answers keeps
the participant: the node's ``sfu.join_timeout`` or the sessions reconcile (``Handlers.reconcile_node``)
decides later. Checks live in memory; if this instance dies, node loss and reconciling still apply.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit.protocol import models

from parley.bus import Bus, NoResponders, rpcs
from parley.observability import get_logger
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.room_state.store import Store

log = get_logger("parley.room_state.join_watch")

PROBE_TIMEOUT = 2.0
"""Seconds to wait for the node's sessions answer (a timeout proves nothing)."""

Rollback = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Check:
    due: float
    room: str
    sid: str
    node_id: str


class JoinWatch:
    def __init__(self, bus: Bus, store: Store, rollback: Rollback, delay: float) -> None:
        self._bus = bus
        self._store = store
        self._rollback = rollback
        self._delay = delay
        self._due: deque[_Check] = deque()
        """In due order: every check has the same delay."""
        self._wake = asyncio.Event()

    def watch(self, room: str, sid: str, node_id: str) -> None:
        """Check this join ``delay`` seconds from now."""
        self._due.append(_Check(time.monotonic() + self._delay, room, sid, node_id))
        self._wake.set()

    async def run(self) -> None:
        while True:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._due[0].due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            check = self._due.popleft()
            try:
                await self.check(check.room, check.sid, check.node_id)
            except Exception:
                log.exception("join check failed", room=check.room, participant=check.sid)

    async def check(self, room: str, sid: str, node_id: str) -> bool:
        """True when the join was rolled back."""
        record = await self._store.load(room)
        participant = record.by_sid(sid) if record is not None else None
        if participant is None or participant.state == models.ParticipantInfo.State.ACTIVE:
            return False
        try:
            await self._bus.call(rpcs.NODE_SESSIONS, pb.NodeSessions(), topic=node_id, timeout=PROBE_TIMEOUT)
        except NoResponders:
            log.warning(
                "join rolled back: its node serves no sessions",
                room=room,
                participant=sid,
                identity=participant.identity,
                node_id=node_id,
            )
            await self._rollback(room, sid)
            return True
        except Exception as exc:
            log.info("join check inconclusive", room=room, participant=sid, error=str(exc))
        return False
