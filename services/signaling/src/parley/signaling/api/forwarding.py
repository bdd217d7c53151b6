"""API methods that check grants and limits at the edge, then forward the request over the bus.

Each service module (``room_service``, ``agent_dispatch``) lists ``Route`` rows: a declared bus RPC
(``parley.bus.rpcs``, named like the API method, with the LiveKit request/response messages) and the
check to run first; the service serving that RPC does the work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.message import Message

from parley.auth import Claims
from parley.bus import Bus, Rpc
from parley.signaling.api import grants, limits
from parley.signaling.api.registry import ApiMethod, Handler

Check = Callable[[Any, Claims], None]
Route = tuple[Rpc[Any, Any], Check]


def room_admin(req: Any, claims: Claims) -> None:
    """roomAdmin on ``req.room``, and a valid room name."""
    grants.require_room_admin(claims, req.room)
    limits.room_name(req.room)


def _forwarder(bus: Bus, rpc: Rpc[Any, Any], check: Check, timeout: float) -> Handler:
    async def handler(request: Any, claims: Claims) -> Message:
        check(request, claims)
        response: Message = await bus.call(rpc, request, timeout=timeout)
        return response

    return handler


def forwarded_methods(bus: Bus, service: str, routes: Sequence[Route], timeout: float) -> list[ApiMethod]:
    """One ``ApiMethod`` per route, named as its RPC: run its check, then call the RPC."""
    return [
        ApiMethod(service, rpc.name, rpc.request, rpc.response, _forwarder(bus, rpc, check, timeout))
        for rpc, check in routes
    ]
