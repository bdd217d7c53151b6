"""The egress controller's config: the shared sections plus ``egress``."""

from __future__ import annotations

from pydantic import Field

from parley.config import ParleyConfig
from parley.config.sections import Section


class CpuCosts(Section):
    """Cores one job of each kind reserves on a worker (LiveKit's defaults)."""

    room_composite: float = Field(default=4.0, ge=0)
    audio_room_composite: float = Field(default=1.0, ge=0)
    web: float = Field(default=4.0, ge=0)
    participant: float = Field(default=2.0, ge=0)
    track_composite: float = Field(default=1.0, ge=0)
    track: float = Field(default=0.5, ge=0)


class EgressSection(Section):
    cpu_costs: CpuCosts = Field(default_factory=CpuCosts)
    """Cores a job of each kind needs free on a worker before it is offered there."""
    max_cpu_utilization: float = Field(default=0.8, gt=0, le=1)
    """Share of a worker's cores that jobs may take (LiveKit: 80 %)."""
    worker_ttl: float = Field(default=3.0, gt=0)
    """Seconds a worker counts as alive after its last WorkerStats (sent every second)."""
    offer_timeout: float = Field(default=1.0, gt=0)
    """Seconds a worker has to accept or refuse an offered job."""
    offer_rounds: int = Field(default=3, ge=1)
    """Rounds over the live workers before StartEgress answers unavailable "no response from servers"."""
    lease: float = Field(default=10.0, gt=0)
    """Seconds a job's lease lasts; the holding worker renews it with every WorkerStats."""
    continue_timeout: float = Field(default=60.0, gt=0)
    """Seconds a job whose worker was lost is offered again (as the next part) before it FAILs."""
    control_timeout: float = Field(default=5.0, gt=0)
    """Seconds the holding worker has to answer StopEgress / UpdateStream."""
    ended_retention: float = Field(default=86400.0, gt=0)
    """Seconds an ended egress stays listable (LiveKit: 24 h)."""
    sweep_interval: float = Field(default=0.5, gt=0)
    """How often expired leases and ended egresses past retention are looked for."""
    relay_interval: float = Field(default=0.2, gt=0)
    """Seconds between scans of the event outbox (a local commit wakes the relay at once)."""
    auto_consumer: str = "egress-auto"
    """Durable JetStream consumer on room events for auto-egress, shared by every controller instance."""
    relay_lock_ttl: float = Field(default=5.0, gt=0)
    """Seconds the outbox relay lock lives without renewal (one relay at a time keeps order)."""


class EgressConfig(ParleyConfig):
    egress: EgressSection = Field(default_factory=EgressSection)
