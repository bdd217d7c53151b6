"""An edge on a MemoryBus for unit tests: config defaults, one API key, no sockets."""

from __future__ import annotations

from parley.auth import Claims, TokenVerifier, VideoGrant
from parley.bus import MemoryBus
from parley.signaling.config import SignalingConfig
from parley.signaling.edge import Edge

API_KEY = "APIunit"
API_SECRET = "unit-secret-unit-secret-unit-secret-0"
EDGE_ID = "EDGE_unit"


def memory_edge(bus: MemoryBus) -> Edge:
    return Edge(SignalingConfig(), bus, TokenVerifier({API_KEY: API_SECRET}), EDGE_ID)


def admin(room: str = "r1") -> Claims:
    grant = VideoGrant(room=room, room_admin=True, room_create=True, room_list=True, room_join=True)
    return Claims(api_key=API_KEY, identity="admin", video=grant)
