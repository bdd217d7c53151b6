"""livekit.AgentDispatchService: grants checked here, the work done by dispatch
(``parley.dispatch.<Method>``). Every method needs roomAdmin on the request's room."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import Message
from livekit.protocol import agent_dispatch as lk

from parley.auth import Claims
from parley.bus import Bus, subjects
from parley.signaling.api import grants, limits
from parley.signaling.api.registry import ApiMethod
from parley.signaling.edge import Edge

SERVICE = "livekit.AgentDispatchService"
FORWARD_TIMEOUT = 15.0

Check = Callable[[Any, Claims], None]


def _create(req: lk.CreateAgentDispatchRequest, claims: Claims) -> None:
    grants.require_room_admin(claims, req.room)
    limits.room_name(req.room)
    limits.metadata(req.metadata)
    limits.attributes(req.attributes)


def _by_room(req: Any, claims: Claims) -> None:
    grants.require_room_admin(claims, req.room)
    limits.room_name(req.room)


TABLE: list[tuple[str, type[Message], type[Message], Check]] = [
    ("CreateDispatch", lk.CreateAgentDispatchRequest, lk.AgentDispatch, _create),
    ("DeleteDispatch", lk.DeleteAgentDispatchRequest, lk.AgentDispatch, _by_room),
    ("ListDispatch", lk.ListAgentDispatchRequest, lk.ListAgentDispatchResponse, _by_room),
]


def _forwarder(
    bus: Bus, name: str, response_type: type[Message], check: Check
) -> Callable[[Any, Claims], Awaitable[Message]]:
    subject = subjects.dispatch_rpc(name)

    async def handler(request: Any, claims: Claims) -> Message:
        check(request, claims)
        return await bus.request(subject, request, response_type, timeout=FORWARD_TIMEOUT)

    return handler


def methods(edge: Edge) -> list[ApiMethod]:
    return [
        ApiMethod(SERVICE, name, req, resp, _forwarder(edge.bus, name, resp, check))
        for name, req, resp, check in TABLE
    ]
