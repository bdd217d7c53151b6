"""The dispatch service's config: the shared sections plus ``dispatch``."""

from __future__ import annotations

import math

from pydantic import Field

from parley.config import ParleyConfig
from parley.config.sections import Section


class DispatchSection(Section):
    load_threshold: float | None = Field(default=None, gt=0)
    """A worker whose reported load is at or above this gets no new jobs.
    Empty: 0.7, or no limit in development mode (as LiveKit)."""
    availability_timeout: float = Field(default=10.0, gt=0)
    """Seconds a worker has to answer an availability request before another is tried."""
    retry_interval: float = Field(default=1.0, gt=0)
    """Seconds between rounds of offers for a job that no worker accepted."""
    job_deadline: float = Field(default=120.0, gt=0)
    """Seconds a job is retried before it fails (LiveKit drops it at once)."""
    redispatch_grace: float = Field(default=2.0, ge=0)
    """Seconds the running jobs of a lost worker wait for it to reconnect (migrate_job)
    before they are dispatched to another worker."""
    worker_timeout: float = Field(default=12.0, gt=0)
    """A worker not heard from for this long (status every 2.5 s) is dead."""
    lease: float = Field(default=15.0, gt=0)
    """Seconds an instance holds a job it is offering; after that another instance may."""
    sweep_interval: float = Field(default=0.25, gt=0)
    """How often due jobs and dead workers are looked for."""
    agent_token_ttl: int = Field(default=3600, ge=60)
    """Lifetime of the token handed to an agent with its job."""
    room_retention: float = Field(default=3600.0, gt=0)
    """Seconds a finished room's dispatches and jobs stay listable."""
    consumer_name: str = "dispatch"
    """Durable JetStream consumer on room events, shared by every dispatch instance."""

    def threshold(self, development: bool) -> float:
        if self.load_threshold is not None:
            return self.load_threshold
        return math.inf if development else 0.7


class DispatchConfig(ParleyConfig):
    dispatch: DispatchSection = Field(default_factory=DispatchSection)
