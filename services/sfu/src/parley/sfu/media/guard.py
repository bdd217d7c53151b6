"""Exceptions on the media path are caught, counted and logged at most once per interval per site."""

from __future__ import annotations

import time

from parley.observability import get_logger
from parley.sfu.media.stats import MediaStats

_log = get_logger("parley.sfu.media")
_LOG_INTERVAL_S = 5.0


class ErrorGuard:
    """One media context's error accounting: counts into its ``MediaStats``, rate-limits the logs."""

    __slots__ = ("_last_logged", "_stats", "_suppressed")

    def __init__(self, stats: MediaStats) -> None:
        self._stats = stats
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, site: str, exc: BaseException, **fields: str) -> None:
        """Count a media-path exception; log it unless this site logged one in the last few seconds."""
        self._stats.errors += 1
        now = time.monotonic()
        last = self._last_logged.get(site)
        if last is not None and now - last < _LOG_INTERVAL_S:
            self._suppressed[site] = self._suppressed.get(site, 0) + 1
            return
        self._last_logged[site] = now
        suppressed = self._suppressed.pop(site, 0)
        _log.warning(
            "media path error",
            site=site,
            error=f"{type(exc).__name__}: {exc}",
            suppressed=suppressed,
            exc_info=exc,
            **fields,
        )
