"""/agent: agent worker WebSockets, relayed to the dispatch service. (owner: dispatch work)"""

from __future__ import annotations

from aiohttp import web

from parley.signaling.edge import Edge


async def setup(app: web.Application, edge: Edge) -> None:
    """Register /agent. Not built yet: see issue 7."""
