"""aiohttp's error record for a malformed request becomes one info line; others are untouched."""

from __future__ import annotations

import logging

import pytest
from aiohttp.http_exceptions import LineTooLong

from parley.signaling.http_errors import ClientHttpErrorFilter

pytestmark = pytest.mark.unit


def record(exc: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        "Error handling request from %s",
        ("1.2.3.4",),
        (type(exc), exc, None),
    )


def test_bad_http_message_is_one_info_line() -> None:
    rec = record(LineTooLong(b"/rtc?x=" + b"p" * 500, 8190))
    assert ClientHttpErrorFilter().filter(rec)
    assert rec.levelno == logging.INFO and rec.levelname == "INFO" and rec.exc_info is None
    message = rec.getMessage()
    assert message.startswith("bad HTTP request refused: Got more than 8190 bytes") and len(message) < 260


def test_other_errors_pass_unchanged() -> None:
    rec = record(RuntimeError("boom"))
    assert ClientHttpErrorFilter().filter(rec)
    assert rec.levelno == logging.ERROR and rec.exc_info is not None
