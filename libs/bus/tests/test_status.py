"""The one error-code table: every Twirp code's HTTP and gRPC status, and /rtc's refusal status."""

from __future__ import annotations

import grpc
import pytest

from parley.bus import ErrorCode
from parley.bus.status import STATUS, refusal_status, wire_status

pytestmark = pytest.mark.unit

TWIRP_CODES = {
    "canceled", "unknown", "invalid_argument", "malformed", "deadline_exceeded", "not_found", "bad_route",
    "already_exists", "permission_denied", "unauthenticated", "resource_exhausted", "failed_precondition",
    "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "dataloss",
}  # fmt: skip


def test_every_twirp_code_and_every_bus_code_has_a_status() -> None:
    assert set(STATUS) == TWIRP_CODES
    assert {str(code) for code in ErrorCode} <= TWIRP_CODES
    for status in STATUS.values():
        assert grpc.StatusCode[status.grpc] is not None  # a real gRPC status name


def test_statuses_as_twirp_and_grpc_answer_them() -> None:
    assert wire_status("not_found").http == 404 and wire_status("not_found").grpc == "NOT_FOUND"
    assert wire_status("malformed").grpc == "INVALID_ARGUMENT" and wire_status("bad_route").http == 404
    assert wire_status("resource_exhausted").http == 429 and wire_status("unavailable").http == 503
    assert wire_status("no_such_code").http == 500 and wire_status("no_such_code").grpc == "UNKNOWN"


def test_rtc_refusals_keep_a_client_fault_and_say_503_otherwise() -> None:
    """What /rtc answered before the table moved here (session_start's own table, 503 by default)."""
    before = {
        ErrorCode.INVALID_ARGUMENT: 400,
        ErrorCode.MALFORMED: 400,
        ErrorCode.UNAUTHENTICATED: 401,
        ErrorCode.PERMISSION_DENIED: 403,
        ErrorCode.ALREADY_EXISTS: 409,
        ErrorCode.RESOURCE_EXHAUSTED: 429,
        ErrorCode.FAILED_PRECONDITION: 412,
    }
    for code in ErrorCode:
        if code is ErrorCode.NOT_FOUND:
            continue  # /rtc answers it as RoomNotFound before asking the table
        assert refusal_status(code) == before.get(code, 503), code
