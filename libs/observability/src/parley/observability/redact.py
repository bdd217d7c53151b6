"""Secrets out of logs: access tokens in query strings, Authorization headers and bare JWTs.

``redact_secrets`` is the last structlog processor before rendering, so it sees every record:
our own fields, stdlib records (aiohttp's server and access logs) and formatted exceptions (an
over-long request line quotes the whole URL in aiohttp's error).
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # access_token=…, refresh_token=…, token=… in a URL or a query string (up to &, quote, space)
    (re.compile(r"(?i)\b((?:access_|refresh_)?token=)[^&\s'\"\\#]+"), r"\1" + REDACTED),
    # Authorization: Bearer …, 'Authorization': 'Bearer …', authorization=…
    (
        re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:bearer\s+|basic\s+)?[^\s'\",}\\]+"),
        r"\1" + REDACTED,
    ),
    # a JWT, or the start of one (a truncated line still carries header and claims): base64url
    # JSON objects begin with "eyJ"
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}"), REDACTED),
)


def redact(text: str) -> str:
    """``text`` with every token and Authorization value replaced by ``[redacted]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return redact(repr(value))  # what the renderers would print for any other object


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact every string field (the event, the exception, the rest)."""
    for key, value in event_dict.items():
        event_dict[key] = _scrub(value)
    return event_dict
