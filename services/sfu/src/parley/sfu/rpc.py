"""Server-initiated RPC (RoomService.PerformRpc), as LiveKit's ``ParticipantImpl.PerformRpc``.

The server sends the destination a reliable ``rpc_request`` whose ``participant_identity`` (the
caller the SDK answers to) is the request id itself; the destination's ``rpc_ack`` and
``rpc_response`` come back addressed to that id, are claimed here by the data router and go to
nobody else. No ack within ``MAX_ROUND_TRIP`` → connection timeout (1501); no response within
``response_timeout_ms`` → response timeout (1502); an error response keeps its RPC code and message.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from enum import IntEnum

from livekit.protocol import models

from parley.bus import ErrorCode, RpcError
from parley.observability import get_logger, wait_event
from parley.sfu.participant import Participant

log = get_logger("parley.sfu.rpc")

DEFAULT_RESPONSE_TIMEOUT_MS = 10_000
MAX_ROUND_TRIP = 7.0
"""Seconds to wait for the destination's ack (LiveKit's DataChannelRpcMaxRoundTripLatency)."""
MAX_PAYLOAD_BYTES = 15_360
RELIABLE = "_reliable"
"""``data_router.RELIABLE`` (data_router imports this module for its reply hook)."""


class RpcCode(IntEnum):
    """Built-in RPC error codes (client SDKs' ``RpcError.ErrorCode``)."""

    APPLICATION_ERROR = 1500
    CONNECTION_TIMEOUT = 1501
    RESPONSE_TIMEOUT = 1502
    RECIPIENT_DISCONNECTED = 1503
    RESPONSE_PAYLOAD_TOO_LARGE = 1504
    SEND_FAILED = 1505
    UNSUPPORTED_METHOD = 1400
    RECIPIENT_NOT_FOUND = 1401
    REQUEST_PAYLOAD_TOO_LARGE = 1402
    UNSUPPORTED_SERVER = 1403
    UNSUPPORTED_VERSION = 1404


_MESSAGES = {
    RpcCode.APPLICATION_ERROR: "Application error in method handler",
    RpcCode.CONNECTION_TIMEOUT: "Connection timeout",
    RpcCode.RESPONSE_TIMEOUT: "Response timeout",
    RpcCode.RECIPIENT_DISCONNECTED: "Recipient disconnected",
    RpcCode.RESPONSE_PAYLOAD_TOO_LARGE: "Response payload too large",
    RpcCode.SEND_FAILED: "Failed to send",
    RpcCode.UNSUPPORTED_METHOD: "Method not supported at destination",
    RpcCode.RECIPIENT_NOT_FOUND: "Recipient not found",
    RpcCode.REQUEST_PAYLOAD_TOO_LARGE: "Request payload too large",
    RpcCode.UNSUPPORTED_SERVER: "RPC not supported by server",
    RpcCode.UNSUPPORTED_VERSION: "Unsupported RPC version",
}

# LiveKit's DataChannelRpcError.PsrpcError(), on our Twirp codes (psrpc Canceled has no peer here:
# a timeout answers deadline_exceeded; Malformed* answer malformed).
_API_CODE = {
    RpcCode.APPLICATION_ERROR: ErrorCode.INTERNAL,
    RpcCode.CONNECTION_TIMEOUT: ErrorCode.DEADLINE_EXCEEDED,
    RpcCode.RESPONSE_TIMEOUT: ErrorCode.DEADLINE_EXCEEDED,
    RpcCode.RECIPIENT_DISCONNECTED: ErrorCode.UNAVAILABLE,
    RpcCode.RESPONSE_PAYLOAD_TOO_LARGE: ErrorCode.MALFORMED,
    RpcCode.SEND_FAILED: ErrorCode.INTERNAL,
    RpcCode.UNSUPPORTED_METHOD: ErrorCode.INVALID_ARGUMENT,
    RpcCode.RECIPIENT_NOT_FOUND: ErrorCode.NOT_FOUND,
    RpcCode.REQUEST_PAYLOAD_TOO_LARGE: ErrorCode.MALFORMED,
    RpcCode.UNSUPPORTED_SERVER: ErrorCode.UNIMPLEMENTED,
    RpcCode.UNSUPPORTED_VERSION: ErrorCode.UNIMPLEMENTED,
}


def rpc_error(code: int, message: str = "", data: str = "") -> RpcError:
    """The API error for an RPC error: LiveKit's code mapping, its ``RpcError <code>: <msg>`` text."""
    try:
        known: RpcCode | None = RpcCode(code)
    except ValueError:
        known = None
    api_code = _API_CODE.get(known, ErrorCode.INTERNAL) if known is not None else ErrorCode.INTERNAL
    text = message or (_MESSAGES.get(known, "") if known is not None else "")
    detail = f"RpcError {code}: {text}" + (f": {data}" if data else "")
    return RpcError(api_code, detail)


@dataclass(slots=True)
class Pending:
    destination_sid: str
    response: asyncio.Future[str]
    acked: asyncio.Event = field(default_factory=asyncio.Event)


_pending: dict[str, Pending] = {}
"""request id (a uuid, unique on the node) -> the call waiting for it."""


def start(
    destination: Participant, method: str, payload: str, response_timeout_ms: int
) -> tuple[str, Pending]:
    """Send the request to ``destination`` (synchronous: runs inside the room's actor)."""
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise rpc_error(RpcCode.REQUEST_PAYLOAD_TOO_LARGE)
    request_id = str(uuid.uuid4())
    packet = models.DataPacket(
        kind=models.DataPacket.Kind.RELIABLE,
        participant_identity=request_id,
        rpc_request=models.RpcRequest(
            id=request_id,
            method=method,
            payload=payload,
            response_timeout_ms=response_timeout_ms,
            version=1,
        ),
    )
    pending = Pending(destination.sid, asyncio.get_running_loop().create_future())
    _pending[request_id] = pending
    if not destination.send_data(RELIABLE, packet.SerializeToString()):
        _pending.pop(request_id, None)
        raise rpc_error(RpcCode.SEND_FAILED)
    return request_id, pending


async def wait(request_id: str, pending: Pending, response_timeout_ms: int) -> str:
    """The destination's response payload, or the RPC's error as an ``RpcError``."""
    try:
        if not await wait_event(pending.acked, MAX_ROUND_TRIP):
            raise rpc_error(RpcCode.CONNECTION_TIMEOUT)
        try:
            return await asyncio.wait_for(asyncio.shield(pending.response), response_timeout_ms / 1000)
        except TimeoutError:
            raise rpc_error(RpcCode.RESPONSE_TIMEOUT) from None
    finally:
        _pending.pop(request_id, None)


def claim(sender: Participant, packet: models.DataPacket) -> bool:
    """True when ``packet`` answers a server-initiated RPC from ``sender`` (then it is consumed)."""
    value = packet.WhichOneof("value")
    if value == "rpc_ack":
        pending = _pending.get(packet.rpc_ack.request_id)
        if pending is None or pending.destination_sid != sender.sid:
            return False
        pending.acked.set()
        return True
    if value != "rpc_response":
        return False
    response = packet.rpc_response
    pending = _pending.get(response.request_id)
    if pending is None or pending.destination_sid != sender.sid:
        return False
    pending.acked.set()
    if not pending.response.done():
        if response.WhichOneof("value") == "error":
            err = response.error
            pending.response.set_exception(rpc_error(err.code, err.message, err.data))
        else:
            pending.response.set_result(response.payload)
    return True
