"""``parley dev`` as a user runs it: the edge answers within 15 s, Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from parley.runtime.processes import free_port
from parley.testing import poll_until

pytestmark = pytest.mark.integration

PARLEY = Path(sys.executable).parent / "parley"
MARKER_VAR = "PARLEY_DEV_TEST_MARKER"


def processes_with_marker(marker: str) -> list[int]:
    """Live pids started by the command under test.

    Every descendant inherits ``marker`` in its environment, except that Valkey rewrites its
    environment area for its process title; its title keeps the port, which is in the marker.
    """
    needle = f"{MARKER_VAR}={marker}".encode()
    valkey_title = f"127.0.0.1:{marker.rsplit('-', 1)[1]}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        if needle in environ.split(b"\0") or (b"valkey" in cmdline and valkey_title in cmdline):
            found.append(int(entry.name))
    return found


def start_dev(tmp_path: Path, marker: str, *extra: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    valkey_port = int(marker.rsplit("-", 1)[1])
    out = tmp_path / "dev.out"
    argv = [
        str(PARLEY),
        "dev",
        "--port",
        str(port),
        "--nats-port",
        str(free_port()),
        "--valkey-port",
        str(valkey_port),
        "--data-dir",
        str(tmp_path / "dev"),
        "--set",
        f"signaling.grpc_port={free_port()}",
        *extra,
    ]
    env = {**os.environ, MARKER_VAR: marker}
    env.pop("PARLEY_CONFIG", None)
    with out.open("wb") as sink:
        proc = subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, port, out


@pytest.fixture
def marker() -> Iterator[str]:
    value = f"{uuid.uuid4().hex}-{free_port()}"  # <unique>-<valkey port>
    yield value
    for pid in processes_with_marker(value):  # never leave anything behind, even when a test fails
        os.kill(pid, signal.SIGKILL)


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


async def test_dev_answers_and_ctrl_c_leaves_nothing(tmp_path: Path, marker: str) -> None:
    started = time.monotonic()
    proc, port, out = start_dev(tmp_path, marker)
    await poll_until(
        lambda: proc.poll() is None and answers_200(f"http://127.0.0.1:{port}/"),
        timeout=15,
        interval=0.1,
        message=f"GET / on the edge (output: {out.read_text() if out.exists() else ''})",
    )
    assert time.monotonic() - started < 15
    # the rest of the stack follows the edge; the banner says everything is healthy
    await poll_until(lambda: "Ctrl-C to stop" in out.read_text(), timeout=120, message="the banner")
    banner = out.read_text()
    assert f"http://127.0.0.1:{port}" in banner and f"ws://127.0.0.1:{port}" in banner
    assert "devkey" in banner and "secret" in banner
    children = processes_with_marker(marker)
    # parley dev itself, nats-server, valkey and one process per service
    services = next(line for line in banner.splitlines() if "Services:" in line).split(":", 1)[1].split(",")
    assert len(children) == 3 + len(services), (children, banner)

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0, out.read_text()
    await poll_until(lambda: not processes_with_marker(marker), timeout=10, message="no process left")
    assert "stopped" in out.read_text()


async def test_service_dying_at_start_fails_with_its_log(tmp_path: Path, marker: str) -> None:
    # the edge refuses this value of its own section: it exits at start, parley dev reports it
    proc, _, out = start_dev(tmp_path, marker, "--set", "signaling.max_frame_bytes=1")
    code = proc.wait(timeout=90)
    output = out.read_text()
    assert code != 0, output
    assert "signaling exited with code" in output
    assert "max_frame_bytes" in output  # the tail of the service's own log
    await poll_until(lambda: not processes_with_marker(marker), timeout=10, message="no process left")


def test_invalid_config_names_the_key(tmp_path: Path, marker: str) -> None:
    proc, _, out = start_dev(tmp_path, marker, "--set", "rtc.port_range_start=80")
    assert proc.wait(timeout=30) == 2
    assert "rtc.port_range_start" in out.read_text()
