"""/rtc and /rtc/v1: client signalling, relayed to the SFU node hosting the room. (owner: edge work)"""

from __future__ import annotations

from aiohttp import web

from parley.signaling.edge import Edge


async def setup(app: web.Application, edge: Edge) -> None:
    """Register the signalling routes. Not built yet: see issue 4."""
