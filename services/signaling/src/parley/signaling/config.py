"""The signaling edge's config: the shared sections plus ``signaling``."""

from __future__ import annotations

from pydantic import Field

from parley.config import ParleyConfig
from parley.config.sections import Section


class SignalingSection(Section):
    grpc_port: int = Field(default=7890, ge=0, le=65535)
    """Port of the gRPC Room API (livekit.RoomService, livekit.AgentDispatchService); 0 = free port."""
    max_frame_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    """Largest WebSocket frame accepted from a client or worker."""
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """Largest Twirp request body."""
    dev_token_endpoint: bool = True
    """Serve /dev/token for the meet page; honoured only in development mode."""


class SignalingConfig(ParleyConfig):
    signaling: SignalingSection = Field(default_factory=SignalingSection)
