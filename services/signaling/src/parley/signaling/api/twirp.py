"""Twirp over the edge's aiohttp app: ``POST /twirp/<service>/<method>``.

A body over ``signaling.max_request_bytes`` (aiohttp's ``client_max_size``) answers HTTP 413 with
Twirp code ``malformed`` ("request too large"), announced or not by Content-Length.
"""

from __future__ import annotations

import json

from aiohttp import web

from parley.auth import TokenVerifier, bearer_token
from parley.observability import get_logger
from parley.signaling.api import codec
from parley.signaling.api.errors import ApiError, to_api_error
from parley.signaling.api.registry import Registry

log = get_logger("parley.signaling.api.twirp")

ROUTE = "/twirp/{service}/{method}"


def error_response(error: ApiError, status: int | None = None) -> web.Response:
    """The Twirp JSON error; ``status`` overrides the code's HTTP status (413 for a large body)."""
    body = json.dumps({"code": error.code, "msg": error.message, "meta": {}})
    response = web.Response(status=status or error.status, body=body.encode())
    response.headers["Content-Type"] = "application/json"
    return response


class TwirpHandler:
    def __init__(self, registry: Registry, verifier: TokenVerifier) -> None:
        self._registry = registry
        self._verifier = verifier

    def install(self, app: web.Application) -> None:
        app.router.add_post(ROUTE, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        service, name = request.match_info["service"], request.match_info["method"]
        method = self._registry.get(service, name)
        if method is None:
            return error_response(ApiError("bad_route", f"no handler for path {request.path}"))
        encoding = codec.encoding_of(request.headers.get("Content-Type", ""))
        if encoding is None:
            return error_response(
                ApiError("bad_route", f"unexpected Content-Type: {request.headers.get('Content-Type', '')!r}")
            )
        limit = request.client_max_size
        if request.content_length is not None and request.content_length > limit:
            return _too_large(request.content_length, limit)
        try:
            claims = self._verifier.verify(bearer_token(request.headers.get("Authorization")))
            message = codec.decode(await request.read(), encoding, method.request_type)
            response = await method.handler(message, claims)
        except web.HTTPRequestEntityTooLarge:
            return _too_large(None, limit)
        except Exception as exc:
            error = to_api_error(exc)
            if error.status >= 500:
                log.warning("api call failed", method=method.path, code=error.code, error=error.message)
            return error_response(error)
        out = web.Response(status=200, body=codec.encode(response, encoding))
        out.headers["Content-Type"] = encoding
        return out


def _too_large(size: int | None, limit: int) -> web.Response:
    got = f" ({size} bytes)" if size is not None else ""
    message = f"request too large{got}: the limit is {limit} bytes"
    return error_response(ApiError("malformed", message), status=413)
