"""The signaling edge's config: the shared sections plus ``signaling``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parley.config import ParleyConfig
from parley.config.sections import Section

ReadyService = Literal["room-state", "sfu", "dispatch", "turn-alloc"]


class SignalingSection(Section):
    grpc_port: int = Field(default=7890, ge=0, le=65535)
    """Port of the gRPC Room API (livekit.RoomService, livekit.AgentDispatchService); 0 = free port."""
    max_frame_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    """Largest WebSocket frame accepted from a client or worker."""
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """Largest Twirp request body."""
    dev_token_endpoint: bool = True
    """Serve /dev/token for the meet page; honoured only in development mode."""
    ready_requires: list[ReadyService] = Field(
        default_factory=lambda: list[ReadyService](["room-state", "sfu", "dispatch", "turn-alloc"])
    )
    """Services that must answer before GET / and /readyz say ready (503 until then); the SFU
    also needs a heartbeat room-state has seen. turn-alloc counts only when turn.enabled."""
    responder_wait: float = Field(default=10.0, ge=0)
    """Seconds an edge request to room-state or dispatch waits for an instance to answer (one
    restarting: a cold start is ~3 s on a loaded 2-core machine, plus a supervisor's backoff)
    before the client gets 503 (then the request's own timeout); 0 = at once."""


class SignalingConfig(ParleyConfig):
    signaling: SignalingSection = Field(default_factory=SignalingSection)
