"""The server API: Twirp on the HTTP port and gRPC on ``signaling.grpc_port``.

Both serve the same method table (``registry.Registry``): livekit.RoomService from
``room_service``, livekit.AgentDispatchService from ``agent_dispatch`` and livekit.Egress from
``egress_service``.
"""

from __future__ import annotations

from aiohttp import web
from livekit.protocol import agent_dispatch as _agent_dispatch  # noqa: F401  (registers descriptors)
from livekit.protocol import egress as _egress  # noqa: F401
from livekit.protocol import room as _room  # noqa: F401

from parley.signaling.api import agent_dispatch, egress_service, room_service
from parley.signaling.api.grpc_server import GrpcApi
from parley.signaling.api.registry import ApiMethod, Registry
from parley.signaling.api.twirp import TwirpHandler
from parley.signaling.edge import Edge

__all__ = ["ApiMethod", "Registry", "setup"]

GRPC_KEY = web.AppKey("parley.api.grpc", GrpcApi)


async def setup(app: web.Application, edge: Edge) -> None:
    """Register the Twirp route and start the gRPC server (stopped on app cleanup)."""
    registry = Registry()
    registry.register(room_service.methods(edge))
    registry.register(agent_dispatch.methods(edge))
    registry.register(egress_service.methods(edge))
    TwirpHandler(registry, edge.verifier).install(app)
    grpc_api = GrpcApi(registry, edge.verifier)
    await grpc_api.start(edge.config.bind_addresses, edge.config.signaling.grpc_port)
    app[GRPC_KEY] = grpc_api

    async def close(_: web.Application) -> None:
        await grpc_api.aclose()

    app.on_cleanup.append(close)
