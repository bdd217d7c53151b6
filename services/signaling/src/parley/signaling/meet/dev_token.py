"""GET /dev/token?room=&name=&identity=: a join token for the meet page, in development mode only.

Signed with the first configured key. Never registered unless ``development`` and
``signaling.dev_token_endpoint`` are both set, so outside dev mode the path answers 404.
"""

from __future__ import annotations

import re
import secrets

from aiohttp import web

from parley.auth import Claims, VideoGrant, create_token
from parley.observability import get_logger
from parley.signaling.config import SignalingConfig

log = get_logger("parley.signaling.meet")

TOKEN_TTL_SECONDS = 6 * 3600
MAX_ROOM = 128
MAX_NAME = 64
MAX_IDENTITY = 128
_SLUG = re.compile(r"[^a-z0-9]+")


def dev_token_enabled(config: SignalingConfig) -> bool:
    return config.development and config.signaling.dev_token_endpoint and bool(config.keys)


class DevTokenHandler:
    def __init__(self, config: SignalingConfig) -> None:
        self._api_key, self._secret = next(iter(config.keys.items()))

    async def handle(self, request: web.Request) -> web.Response:
        query = request.query
        room = _param(query.get("room"), "room", MAX_ROOM, required=True)
        name = _param(query.get("name"), "name", MAX_NAME, required=False)
        identity = _param(query.get("identity"), "identity", MAX_IDENTITY, required=False) or _identity_for(
            name
        )
        claims = Claims(
            identity=identity,
            name=name,
            video=VideoGrant(
                room_join=True,
                room=room,
                can_publish=True,
                can_subscribe=True,
                can_publish_data=True,
                can_update_own_metadata=True,
            ),
        )
        token = create_token(self._api_key, self._secret, claims, ttl=TOKEN_TTL_SECONDS)
        log.info("dev token issued", room=room, participant=identity)
        scheme = "wss" if request.secure else "ws"
        return web.json_response(
            {
                "token": token,
                "identity": identity,
                "name": name,
                "room": room,
                "url": f"{scheme}://{request.host}",
            },
            headers={"Cache-Control": "no-store"},
        )


def _param(value: str | None, what: str, limit: int, *, required: bool) -> str:
    value = (value or "").strip()
    if required and not value:
        raise web.HTTPBadRequest(text=f"{what} is required")
    if len(value) > limit:
        raise web.HTTPBadRequest(text=f"{what} is longer than {limit} characters")
    return value


def _identity_for(name: str) -> str:
    """A readable, unique identity: the name's slug plus a random suffix."""
    slug = _SLUG.sub("-", name.lower()).strip("-")[:32] or "guest"
    return f"{slug}-{secrets.token_hex(3)}"
