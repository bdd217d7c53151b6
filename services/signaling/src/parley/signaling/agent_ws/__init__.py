"""/agent: agent worker WebSockets, relayed frame by frame to the dispatch service over NATS."""

from __future__ import annotations

from aiohttp import web

from parley.signaling.agent_ws.relay import AgentRelay
from parley.signaling.edge import Edge

RELAY_KEY = web.AppKey("parley.agent_ws.relay", AgentRelay)


async def setup(app: web.Application, edge: Edge) -> None:
    """Register /agent and subscribe to this edge's agent subject."""
    relay = AgentRelay(edge)
    await relay.start()
    app[RELAY_KEY] = relay
    app.router.add_get("/agent", relay.handle)

    async def close(_: web.Application) -> None:
        await relay.aclose()

    app.on_shutdown.append(close)
