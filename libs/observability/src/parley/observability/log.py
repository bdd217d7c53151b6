"""structlog setup: JSON in production, console in development.

Every record carries ``service`` and ``node``; ``bind_context`` adds ``room``,
``participant`` and friends for the current task through contextvars. Tokens and Authorization
values are redacted from every record (``redact``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from parley.observability.redact import redact_secrets

_configured = False


def configure_logging(service: str, node_id: str, *, level: str = "info", json_output: bool = True) -> None:
    """Route stdlib logging and structlog through one renderer."""
    global _configured
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aioice", "aiortc", "asyncio", "nats", "aiohttp.access", "grpc"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service, node=node_id)
    _configured = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger; keyword arguments become fields."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


def bind_context(**fields: str) -> None:
    """Add fields (room, participant, ...) to every record of the current task."""
    structlog.contextvars.bind_contextvars(**fields)


@contextmanager
def log_fields(**fields: str) -> Iterator[None]:
    """Fields for the duration of a block."""
    with structlog.contextvars.bound_contextvars(**fields):
        yield
