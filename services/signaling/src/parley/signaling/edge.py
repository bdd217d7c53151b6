"""What every part of the edge shares: config, bus, token verifier, owned tasks."""

from __future__ import annotations

from dataclasses import dataclass, field

from parley.auth import TokenVerifier
from parley.bus import Bus
from parley.observability import TaskSet
from parley.signaling.config import SignalingConfig


@dataclass(slots=True)
class Edge:
    config: SignalingConfig
    bus: Bus
    verifier: TokenVerifier
    edge_id: str
    tasks: TaskSet = field(default_factory=lambda: TaskSet("signaling"))
    draining: bool = False
