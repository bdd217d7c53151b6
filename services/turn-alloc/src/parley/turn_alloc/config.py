"""turn-alloc's config: the shared sections (``turn``, ``rtc.stun_servers``) plus ``turn_alloc``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from parley.config import ParleyConfig
from parley.config.sections import Section, TurnServerConfig


class TurnAllocSection(Section):
    quota_store: Literal["redis", "memory"] = "redis"
    """Where issued credentials are counted for the per-participant quota. ``redis`` is shared by
    every turn-alloc instance; ``memory`` counts only what this process issued (one instance, dev)."""
    probe_timeout: float = Field(default=2.0, gt=0)
    """Seconds a health probe (STUN Binding) waits for its answer."""
    unhealthy_after: int = Field(default=2, ge=1)
    """Consecutive failed probes after which a TURN server is no longer handed out."""


class TurnAllocConfig(ParleyConfig):
    turn_alloc: TurnAllocSection = Field(default_factory=TurnAllocSection)

    @model_validator(mode="after")
    def _secrets(self) -> TurnAllocConfig:
        if self.turn.enabled:
            for index, server in enumerate(self.turn.servers):
                if not (server.secret or self.turn.secret):
                    raise ValueError(f"turn.servers.{index}.secret: required (or set turn.secret)")
        return self

    def secret_of(self, server: TurnServerConfig) -> str:
        return server.secret or self.turn.secret
