"""A malformed HTTP request is the client's error, not ours: aiohttp logs it on ``aiohttp.server``
at error level with a traceback ("Error handling request"); this filter turns that record into one
info line (the client still gets aiohttp's 400/431). Other server errors pass unchanged.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMessage


class ClientHttpErrorFilter(logging.Filter):
    """Rewrite records of a ``BadHttpMessage`` (bad request line, header too long, ...)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BadHttpMessage):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "bad HTTP request refused: %s", (str(exc.message)[:200],)
            record.exc_info, record.exc_text = None, None
        return True


def install() -> None:
    """Idempotent: one filter on ``aiohttp.server``."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, ClientHttpErrorFilter) for f in logger.filters):
        logger.addFilter(ClientHttpErrorFilter())
