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


class RoomStateConfig(ParleyConfig):
    room_state: RoomStateSection = Field(default_factory=RoomStateSection)
