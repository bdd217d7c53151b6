"""The webhook service's config: the shared sections (``webhook``) plus ``webhook_service``."""

from __future__ import annotations

from pydantic import Field, model_validator

from parley.config import ParleyConfig
from parley.config.sections import Section


class WebhookServiceSection(Section):
    """Knobs of the delivery machinery; ``webhook`` holds what LiveKit's livekit.yaml has."""

    partitions: int = Field(default=8, ge=1, le=256)
    """Rooms are hashed into this many partitions; instances share work by partition.
    Fixed per deployment: changing it re-partitions only events stored afterwards."""
    lease_ttl: float = Field(default=10.0, gt=1.0)
    """Seconds a partition lease lives without renewal (how fast a crashed instance's work moves)."""
    ack_wait: float = Field(default=4.0, gt=0.5)
    """Seconds JetStream waits for an ack before redelivering; kept alive while retrying."""
    batch: int = Field(default=64, ge=1, le=1024)
    """Events fetched at once per endpoint and partition (rooms in a batch are delivered concurrently)."""
    backfill: float = Field(default=60.0, ge=0)
    """When an endpoint's consumer is first created, deliver events stored this many seconds before."""
    max_connections: int = Field(default=64, ge=1)
    """Concurrent HTTP connections per endpoint."""
    stream_max_age: float = Field(default=0.0, ge=0)
    """Seconds the partitioned copy of the events is kept; 0 = twice ``webhook.retention``."""

    @model_validator(mode="after")
    def _timers(self) -> WebhookServiceSection:
        # A crashed holder's unacked events must be redeliverable before its lease can move,
        # so the next owner sees them before anything newer of the same room.
        if self.ack_wait + self.renew_interval >= self.lease_ttl:
            raise ValueError("webhook_service.ack_wait must be below 2/3 of lease_ttl")
        return self

    @property
    def renew_interval(self) -> float:
        return self.lease_ttl / 3


class WebhookServiceConfig(ParleyConfig):
    webhook_service: WebhookServiceSection = Field(default_factory=WebhookServiceSection)
