"""How an RPC error code shows on each wire: Twirp code -> HTTP status and gRPC status.

One table for the Twirp and gRPC API transports and the /rtc refusals. The codes are Twirp's
(``ErrorCode`` is the subset the bus carries); gRPC statuses are named as in ``grpc.StatusCode``
so this package needs no gRPC runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from parley.bus.errors import RETRYABLE


@dataclass(frozen=True, slots=True)
class WireStatus:
    http: int
    grpc: str
    """A ``grpc.StatusCode`` member name."""


STATUS: dict[str, WireStatus] = {
    "canceled": WireStatus(408, "CANCELLED"),
    "unknown": WireStatus(500, "UNKNOWN"),
    "invalid_argument": WireStatus(400, "INVALID_ARGUMENT"),
    "malformed": WireStatus(400, "INVALID_ARGUMENT"),
    "deadline_exceeded": WireStatus(408, "DEADLINE_EXCEEDED"),
    "not_found": WireStatus(404, "NOT_FOUND"),
    "bad_route": WireStatus(404, "UNIMPLEMENTED"),
    "already_exists": WireStatus(409, "ALREADY_EXISTS"),
    "permission_denied": WireStatus(403, "PERMISSION_DENIED"),
    "unauthenticated": WireStatus(401, "UNAUTHENTICATED"),
    "resource_exhausted": WireStatus(429, "RESOURCE_EXHAUSTED"),
    "failed_precondition": WireStatus(412, "FAILED_PRECONDITION"),
    "aborted": WireStatus(409, "ABORTED"),
    "out_of_range": WireStatus(400, "OUT_OF_RANGE"),
    "unimplemented": WireStatus(501, "UNIMPLEMENTED"),
    "internal": WireStatus(500, "INTERNAL"),
    "unavailable": WireStatus(503, "UNAVAILABLE"),
    "dataloss": WireStatus(500, "DATA_LOSS"),
}
"""Every Twirp error code (https://twitchtv.github.io/twirp/docs/spec_v7.html#error-codes)."""

UNKNOWN_CODE = WireStatus(500, "UNKNOWN")


def wire_status(code: str) -> WireStatus:
    """The statuses of a Twirp code; an unknown code is a server error (500, UNKNOWN)."""
    return STATUS.get(code, UNKNOWN_CODE)


def refusal_status(code: str) -> int:
    """The HTTP status of a request the server refused with ``code`` where there is no error body
    (/rtc): the client's own fault keeps its 4xx; anything else, a timeout too, is 503."""
    status = wire_status(code).http
    if status >= 500 or code in RETRYABLE:
        return 503
    return status
