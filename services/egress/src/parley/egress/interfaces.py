"""The controller's seams: where records live (``EgressStore``: Redis in ``store.py``, in memory in
``fakes.py``) and where events go (``DurablePublisher`` from ``parley.bus``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from livekit.protocol import egress as lk

from parley.egress.record import EgressRecord
from parley.protocol.gen.room.v1 import room_state_pb2 as pb

T = TypeVar("T")
Mutation = Callable[[EgressRecord | None], tuple[EgressRecord | None, T]]
"""Gets the stored record (or None) and returns the record to store (None: no change) and a result."""


class EgressStore(Protocol):
    async def get(self, egress_id: str) -> EgressRecord | None: ...

    async def mutate(self, egress_id: str, fn: Mutation[T]) -> T:
        """Apply ``fn`` to the stored record and commit the record, its indexes (room, active
        leases, ended) and its events (the outbox) at once; re-run on a concurrent write."""
        ...

    async def list_infos(self, room_name: str = "") -> list[lk.EgressInfo]:
        """Every stored info, or those of one room, oldest first."""
        ...

    async def renew(self, worker_id: str, egress_ids: list[str], deadline_ms: int) -> None:
        """Move the lease deadline of the jobs ``worker_id`` holds (others are ignored)."""
        ...

    async def claim_due(self, now_ms: int, lease_ms: int, limit: int = 32) -> list[str]:
        """Egresses whose ``due_ms`` passed, hidden from other claimers for ``lease_ms``."""
        ...

    async def forget_ended(self, before_ms: int) -> int:
        """Delete the records that ended before ``before_ms``; returns how many."""
        ...

    # outbox (one relay at a time, under a lock) ---------------------------------------------------
    async def acquire_relay(self, token: str, ttl_ms: int) -> bool: ...

    async def release_relay(self, token: str) -> None: ...

    async def outbox_peek(self, count: int) -> list[pb.RoomEvent]: ...

    async def outbox_trim(self, count: int, token: str, ttl_ms: int) -> bool: ...
