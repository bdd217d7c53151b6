"""Secrets out of logs: query tokens, Authorization values and (partial) JWTs."""

from __future__ import annotations

import logging

import pytest
import structlog

from parley.observability import configure_logging, get_logger
from parley.observability.redact import REDACTED, redact, redact_secrets

pytestmark = pytest.mark.unit

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsInZpZGVvIjp7fX0.c2lnbmF0dXJlX2J5dGVzX2hlcmU"


@pytest.mark.parametrize(
    "text",
    [
        f"GET /rtc?access_token={JWT}&sdk=js HTTP/1.1",
        f"bytearray(b'/rtc?access_token={JWT[:30]}')",
        f"Authorization: Bearer {JWT}",
        f"{{'Authorization': 'Bearer {JWT}', 'Host': 'x'}}",
        f"refresh_token={JWT}",
        f"token {JWT} was refused",
        f"cut short: {JWT[:40]}",
    ],
)
def test_tokens_are_redacted(text: str) -> None:
    out = redact(text)
    assert REDACTED in out
    assert JWT[:20] not in out and JWT.split(".")[1][:12] not in out


def test_the_rest_of_the_line_stays() -> None:
    assert redact(f"/rtc?access_token={JWT}&sdk=js") == f"/rtc?access_token={REDACTED}&sdk=js"
    assert redact("Authorization: Bearer abc.def") == f"Authorization: {REDACTED}"
    assert redact("nothing secret here, tokens=3 eyJ") == "nothing secret here, tokens=3 eyJ"


def test_processor_scrubs_every_field() -> None:
    event = {
        "event": f"url /rtc?access_token={JWT}",
        "headers": {"Authorization": f"Bearer {JWT}"},
        "n": 3,
        "items": [JWT],
        "obj": ValueError(f"token={JWT}"),
    }
    out = redact_secrets(None, "info", event)
    assert JWT not in str(out) and out["n"] == 3


def test_configured_logging_redacts_stdlib_and_structlog_records(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    names = ("aioice", "aiortc", "asyncio", "nats", "aiohttp.access", "grpc")
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in names})
    configure_logging("test", "N_1", json_output=True)
    try:
        get_logger("t").info("joined", url=f"/rtc?access_token={JWT}")
        try:
            raise ValueError(f"Got more than 8190 bytes when reading: b'/rtc?access_token={JWT}'")
        except ValueError:
            logging.getLogger("aiohttp.server").exception("Error handling request")
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved[0], saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    assert "joined" in err and "Error handling request" in err
    assert JWT[:20] not in err and REDACTED in err
