"""Exceptions on the media path are caught, counted and logged at most once per interval per site."""

from __future__ import annotations

import time

from parley.observability import get_logger
from parley.sfu.media.stats import STATS

_log = get_logger("parley.sfu.media")
_LOG_INTERVAL_S = 5.0
_last_logged: dict[str, float] = {}
_suppressed: dict[str, int] = {}


def report_error(site: str, exc: BaseException, **fields: str) -> None:
    """Count a media-path exception; log it unless this site logged one in the last few seconds."""
    STATS.errors += 1
    now = time.monotonic()
    last = _last_logged.get(site)
    if last is not None and now - last < _LOG_INTERVAL_S:
        _suppressed[site] = _suppressed.get(site, 0) + 1
        return
    _last_logged[site] = now
    suppressed = _suppressed.pop(site, 0)
    _log.warning(
        "media path error",
        site=site,
        error=f"{type(exc).__name__}: {exc}",
        suppressed=suppressed,
        exc_info=exc,
        **fields,
    )
