"""livekit.AgentDispatchService: grants checked here, the work done by dispatch
(``parley.dispatch.<Method>``). Every method needs roomAdmin on the request's room."""

from __future__ import annotations

from livekit.protocol import agent_dispatch as lk

from parley.auth import Claims
from parley.bus import rpcs
from parley.signaling.api import limits
from parley.signaling.api.forwarding import Route, forwarded_methods, room_admin
from parley.signaling.api.registry import ApiMethod
from parley.signaling.edge import Edge

SERVICE = "livekit.AgentDispatchService"
FORWARD_TIMEOUT = 15.0


def _create(req: lk.CreateAgentDispatchRequest, claims: Claims) -> None:
    room_admin(req, claims)
    limits.metadata(req.metadata)
    limits.attributes(req.attributes)


TABLE: list[Route] = [
    (rpcs.CREATE_DISPATCH, _create),
    (rpcs.DELETE_DISPATCH, room_admin),
    (rpcs.LIST_DISPATCH, room_admin),
]


def methods(edge: Edge) -> list[ApiMethod]:
    return forwarded_methods(edge.bus, SERVICE, TABLE, FORWARD_TIMEOUT)
