"""/rtc and /rtc/v1: client signalling, relayed to the SFU node hosting the room over NATS."""

from __future__ import annotations

from aiohttp import web

from parley.signaling.edge import Edge
from parley.signaling.rtc.relay import Relay
from parley.signaling.rtc.validate import handle_validate
from parley.signaling.rtc.ws import handle_rtc, handle_rtc_v1

RELAY_KEY = web.AppKey("rtc_relay", Relay)


async def setup(app: web.Application, edge: Edge) -> None:
    """Register the signalling routes and start the relay subscription."""
    relay = Relay(edge.bus, edge.edge_id)
    await relay.start()
    app[RELAY_KEY] = relay

    async def rtc_ws(request: web.Request) -> web.StreamResponse:
        return await handle_rtc(request, edge, relay)

    async def rtc_v1_ws(request: web.Request) -> web.StreamResponse:
        return await handle_rtc_v1(request, edge, relay)

    async def validate(request: web.Request) -> web.Response:
        return await handle_validate(request, edge)

    app.router.add_get("/rtc", rtc_ws)
    app.router.add_get("/rtc/validate", validate)
    app.router.add_get("/rtc/v1", rtc_v1_ws)
    app.router.add_get("/rtc/v1/validate", validate)

    async def close_relay(_: web.Application) -> None:
        await relay.aclose()

    app.on_cleanup.append(close_relay)
