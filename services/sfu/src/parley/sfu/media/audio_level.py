"""RFC 6464 audio levels (``ssrc-audio-level`` header extension) turned into a recent 0..1 level."""

from __future__ import annotations

LINEAR = [10 ** (-level / 20) for level in range(128)]
"""-dBov (0 = loudest, 127 = silence) to linear amplitude."""
SILENCE_DBOV = 127


class AudioLevel:
    """Mean linear level over windows of ``window_s``; falls to 0 when packets stop for a window."""

    __slots__ = ("_count", "_level", "_sum", "_window_end", "_window_s")

    def __init__(self, window_s: float = 0.4) -> None:
        self._window_s = window_s
        self._window_end = 0.0
        self._sum = 0.0
        self._count = 0
        self._level = 0.0

    def add(self, dbov: int, now: float) -> None:
        """One packet's level (-dBov, 0..127)."""
        if now >= self._window_end:
            self._close(now)
        self._sum += LINEAR[dbov & 0x7F] if dbov < SILENCE_DBOV else 0.0
        self._count += 1

    def _close(self, now: float) -> None:
        if now - self._window_end > self._window_s:
            self._level = 0.0  # no packet for a whole window
        else:
            self._level = self._sum / self._count if self._count else 0.0
        self._sum = 0.0
        self._count = 0
        self._window_end = now + self._window_s

    def level(self, now: float) -> float:
        if now - self._window_end > self._window_s:
            return 0.0
        return self._level
