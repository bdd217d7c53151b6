"""The meet page at / and the dev-only token endpoint. (owner: browser work)"""

from __future__ import annotations

from aiohttp import web

from parley.signaling.edge import Edge


async def setup(app: web.Application, edge: Edge) -> None:
    """Register / and /dev/token. Not built yet: see issue 5."""
