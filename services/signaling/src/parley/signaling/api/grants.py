"""Grant checks per method, exactly as LiveKit's roomservice.go does them.

Also for AgentDispatchService handlers: ``require_room_admin(claims, room)``; for livekit.Egress:
``require_room_record(claims)``.
"""

from __future__ import annotations

from parley.auth import Claims
from parley.signaling.api.errors import permission_denied


def require_room_create(claims: Claims) -> None:
    if not claims.video.flag("room_create"):
        raise permission_denied()


def require_room_list(claims: Claims) -> None:
    if not claims.video.flag("room_list"):
        raise permission_denied()


def require_room_record(claims: Claims) -> None:
    """livekit.Egress (LiveKit's ``EnsureRecordPermission``): roomRecord; the room is not compared."""
    if not claims.video.flag("room_record"):
        raise permission_denied()


def require_room_admin(claims: Claims, room: str) -> None:
    """roomAdmin, and the token's ``video.room`` must name the room acted on."""
    if not claims.video.flag("room_admin") or claims.video.room != room:
        raise permission_denied()
