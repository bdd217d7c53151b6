"""The RPC wire shared by every bus implementation: how a request is answered and a reply read.

A reply is the response message, or an empty body with ``Parley-Error-Code`` (a Twirp code) and
``Parley-Error-Message`` headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from parley.bus.errors import BusError, ErrorCode, RpcError
from parley.observability import get_logger

log = get_logger("parley.bus")

ERROR_CODE_HEADER = "Parley-Error-Code"
ERROR_MESSAGE_HEADER = "Parley-Error-Message"
MAX_ERROR_MESSAGE = 4000
STOP_SERVING_TIMEOUT = 5.0
"""Seconds ``stop_serving`` waits for requests in flight before the service closes anyway."""

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


@dataclass(frozen=True, slots=True)
class Reply:
    data: bytes
    headers: dict[str, str] | None = None


def error_reply(code: ErrorCode, message: str) -> Reply:
    return Reply(b"", {ERROR_CODE_HEADER: str(code), ERROR_MESSAGE_HEADER: message[:MAX_ERROR_MESSAGE]})


async def answer(
    subject: str, request_type: type[Req], data: bytes, handler: Callable[[Req], Awaitable[Message]]
) -> Reply:
    """Decode, run the handler, and turn what it raised into an error reply."""
    request = request_type()
    try:
        request.ParseFromString(data)
    except DecodeError:
        return error_reply(ErrorCode.MALFORMED, f"cannot decode {request_type.__name__}")
    try:
        response = await handler(request)
    except RpcError as exc:
        return error_reply(exc.code, exc.message)
    except BusError as exc:
        return error_reply(exc.code, str(exc))
    except Exception as exc:
        log.exception("rpc handler failed", subject=subject)
        return error_reply(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
    return Reply(response.SerializeToString())


def read_reply(subject: str, data: bytes, headers: dict[str, str] | None, response_type: type[Resp]) -> Resp:
    """The response, or the RpcError the responder answered with."""
    headers = headers or {}
    if code := headers.get(ERROR_CODE_HEADER):
        raise RpcError(code, headers.get(ERROR_MESSAGE_HEADER, ""))
    response = response_type()
    try:
        response.ParseFromString(data)
    except DecodeError as exc:
        raise RpcError(ErrorCode.INTERNAL, f"malformed reply on {subject}") from exc
    return response
