"""The server API: Twirp on the HTTP port and gRPC on its own port. (owner: Room API work)"""

from __future__ import annotations

from aiohttp import web

from parley.signaling.edge import Edge


async def setup(app: web.Application, edge: Edge) -> None:
    """Register Twirp routes and start gRPC. Not built yet: see issue 3."""
