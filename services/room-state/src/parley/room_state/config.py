"""room-state's config: the shared sections plus ``room_state``."""

from __future__ import annotations

from pydantic import Field

from parley.config import ParleyConfig
from parley.config.sections import Section


class RoomStateSection(Section):
    node_ttl: float = Field(default=10.0, gt=0)
    """Seconds an SFU node counts as live after its last NodeStats heartbeat."""
    command_timeout: float = Field(default=2.0, gt=0)
    """Seconds to wait for the hosting node to answer a RoomCommand."""
    timer_interval: float = Field(default=0.25, gt=0)
    """Seconds between scans of the room deadlines (empty/departure timeouts)."""
    timer_lease: float = Field(default=30.0, gt=0)
    """Seconds a claimed deadline is hidden from other instances while it is handled."""
    relay_interval: float = Field(default=0.2, gt=0)
    """Seconds between outbox scans (a local commit wakes the relay at once)."""
    relay_lock_ttl: float = Field(default=5.0, gt=0)
    """Seconds the outbox relay lock lives without renewal (one relay at a time keeps order)."""
    reconcile_grace: float = Field(default=10.0, gt=0)
    """Seconds after its JoinRoom a participant may still be missing from its node's sessions report
    (its session is starting) before room-state removes it (participant_left, STATE_MISMATCH)."""
    join_check_delay: float = Field(default=3.0, gt=0)
    """Seconds after a JoinRoom at which a participant still not ACTIVE is checked against its node:
    a node that no longer serves (no responders) rolls the join back (JOIN_FAILURE,
    participant_connection_aborted)."""


class RoomStateConfig(ParleyConfig):
    room_state: RoomStateSection = Field(default_factory=RoomStateSection)
