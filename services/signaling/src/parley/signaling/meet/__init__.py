"""The meet page at / (bundled from web/ into ``static/``) and the dev-only token endpoint."""

from __future__ import annotations

from aiohttp import web

from parley.observability import get_logger
from parley.signaling.edge import Edge
from parley.signaling.meet.dev_token import DevTokenHandler, dev_token_enabled
from parley.signaling.meet.page import STATIC_DIR, MeetPage

log = get_logger("parley.signaling.meet")


async def setup(app: web.Application, edge: Edge) -> None:
    """Register GET /, GET /static/{name} and, in development mode only, GET /dev/token."""
    page = MeetPage(STATIC_DIR)
    app.router.add_get("/", page.index)
    app.router.add_get("/static/{name}", page.static)
    if not page.built:
        log.warning(
            "meet page not built: GET / serves a notice; run `make dev` (or web/: npm ci && npm run build)"
        )
    if dev_token_enabled(edge.config):
        app.router.add_get("/dev/token", DevTokenHandler(edge.config).handle)
        log.info("dev token endpoint enabled", path="/dev/token")
