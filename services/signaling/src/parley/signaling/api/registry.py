"""The table of API methods that Twirp and gRPC both serve.

Contract for other areas (e.g. ``api/agent_dispatch.py``, AgentDispatchService):

- Build ``ApiMethod(service, name, request_type, response_type, handler)`` entries, with
  ``service`` the full LiveKit service name (``"livekit.AgentDispatchService"``), ``name`` the
  method (``"CreateDispatch"``), the LiveKit request/response message classes, and
  ``handler(request, claims) -> Awaitable[response]``.
- Expose them as ``def methods(edge: Edge) -> list[ApiMethod]`` and register them in
  ``api/__init__.py:setup`` with a plain import.
- The transports verify the token before calling the handler (a missing or bad token answers
  ``unauthenticated``); ``claims`` is the verified ``parley.auth.Claims``. The handler checks
  its grants itself, e.g. ``parley.signaling.api.grants.require_room_admin(claims, request.room)``.
- Raise ``parley.signaling.api.errors.ApiError(code, msg)`` (Twirp code names), or let a
  ``parley.bus.RpcError`` / ``BusError`` / ``parley.auth.AuthError`` through: its code is kept.
  Anything else answers ``internal``.
- The service is announced on gRPC (and in reflection) when its descriptor is found in the
  default descriptor pool, which importing ``livekit.protocol.<module>`` ensures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from parley.auth import Claims

Handler = Callable[[Any, Claims], Awaitable[Message]]


@dataclass(frozen=True, slots=True)
class ApiMethod:
    service: str
    name: str
    request_type: type[Message]
    response_type: type[Message]
    handler: Handler

    @property
    def path(self) -> str:
        return f"{self.service}/{self.name}"


class Registry:
    def __init__(self) -> None:
        self._methods: dict[tuple[str, str], ApiMethod] = {}

    def register(self, methods: Iterable[ApiMethod]) -> None:
        for method in methods:
            self._methods[(method.service, method.name)] = method

    def get(self, service: str, name: str) -> ApiMethod | None:
        return self._methods.get((service, name))

    def services(self) -> dict[str, list[ApiMethod]]:
        grouped: dict[str, list[ApiMethod]] = {}
        for method in self._methods.values():
            grouped.setdefault(method.service, []).append(method)
        return grouped
