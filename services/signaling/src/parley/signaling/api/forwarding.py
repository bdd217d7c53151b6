"""API methods that check grants and limits at the edge, then forward the request over the bus.

Each service module (``room_service``, ``agent_dispatch``) lists ``Route`` rows; the work is done by
the service behind ``subject_of(name)``, which answers with the LiveKit response message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.message import Message

from parley.auth import Claims
from parley.bus import Bus
from parley.signaling.api import grants, limits
from parley.signaling.api.registry import ApiMethod, Handler

Check = Callable[[Any, Claims], None]
Route = tuple[str, type[Message], type[Message], Check]


def room_admin(req: Any, claims: Claims) -> None:
    """roomAdmin on ``req.room``, and a valid room name."""
    grants.require_room_admin(claims, req.room)
    limits.room_name(req.room)


def _forwarder(bus: Bus, subject: str, response_type: type[Message], check: Check, timeout: float) -> Handler:
    async def handler(request: Any, claims: Claims) -> Message:
        check(request, claims)
        return await bus.request(subject, request, response_type, timeout=timeout)

    return handler


def forwarded_methods(
    bus: Bus, service: str, routes: Sequence[Route], subject_of: Callable[[str], str], timeout: float
) -> list[ApiMethod]:
    """One ``ApiMethod`` per route: run its check, then request ``subject_of(name)``."""
    return [
        ApiMethod(service, name, req, resp, _forwarder(bus, subject_of(name), resp, check, timeout))
        for name, req, resp, check in routes
    ]
