"""``ManagedProcess.stop``: a drain that is told to end, and a process that ignores every signal."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from parley.devprocs.processes import ManagedProcess

pytestmark = pytest.mark.unit

# exits on the second SIGTERM only, as a Parley service whose drain is cut short does
SECOND_TERM_EXITS = """
import signal, sys, time
seen = []
def on_term(*_):
    seen.append(1)
    if len(seen) == 2:
        sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""

IGNORES_TERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def _started(script: str, tmp_path: Path) -> ManagedProcess:
    log = tmp_path / "out.log"
    proc = ManagedProcess("probe", [sys.executable, "-c", script], env={}, log_path=log)
    proc.start()
    deadline = time.monotonic() + 10
    while "ready" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "probe did not start"
        time.sleep(0.02)
    return proc


def test_drain_sends_a_second_sigterm(tmp_path: Path) -> None:
    proc = _started(SECOND_TERM_EXITS, tmp_path)
    popen = proc.proc
    assert popen is not None
    proc.stop(timeout=10, drain=0.3)
    assert popen.returncode == 0  # ended by the second SIGTERM, not killed


def test_without_drain_one_sigterm_then_sigkill(tmp_path: Path) -> None:
    proc = _started(SECOND_TERM_EXITS, tmp_path)
    popen = proc.proc
    assert popen is not None
    proc.stop(timeout=0.5)
    assert popen.returncode == -9


def test_a_process_deaf_to_sigterm_is_killed(tmp_path: Path) -> None:
    proc = _started(IGNORES_TERM, tmp_path)
    popen = proc.proc
    assert popen is not None
    proc.stop(timeout=0.6, drain=0.2)
    assert popen.returncode == -9
    assert subprocess.run(["kill", "-0", str(popen.pid)], capture_output=True).returncode != 0
