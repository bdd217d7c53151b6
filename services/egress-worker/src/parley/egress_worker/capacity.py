"""CPU the worker's process tree uses, from ``/proc`` (no psutil): cores over the last interval."""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _process_seconds(pid: int) -> float:
    """user + system CPU seconds of ``pid`` and its waited-for children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # after the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(v) for v in fields[11:15]) / _TICKS


def machine_cores() -> float:
    return float(len(os.sched_getaffinity(0)) or os.cpu_count() or 1)


class CpuMeter:
    """``sample()`` returns the cores used since the previous sample."""

    def __init__(self, pid: int | None = None) -> None:
        self._pid = pid or os.getpid()
        self._at = time.monotonic()
        self._cpu = _process_seconds(self._pid)

    def sample(self) -> float:
        now, cpu = time.monotonic(), _process_seconds(self._pid)
        elapsed = now - self._at
        used = (cpu - self._cpu) / elapsed if elapsed > 0 else 0.0
        self._at, self._cpu = now, cpu
        return max(used, 0.0)
