"""Durations written as ``90``, ``30s``, ``10m``, ``6h``, ``1d`` or ``1h30m``."""

from __future__ import annotations

import re

from parley.cli.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; a bare number is seconds."""
    raw = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", raw):
        seconds = float(raw)
    else:
        parts = _PART.findall(raw)
        if not parts or "".join(n + u for n, u in parts) != raw:
            raise UsageError(f"invalid duration {text!r}: use e.g. 30s, 10m, 6h, 1d, 1h30m")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"invalid duration {text!r}: must be positive")
    return seconds
