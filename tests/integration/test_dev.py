"""``parley dev`` as a user runs it: the edge answers within 15 s, "running" means ready (the API
and joins work at once), a crashed service is restarted, Ctrl-C leaves no process behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from livekit import api as lkapi
from livekit import rtc

from parley.devprocs.processes import free_port
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


def answers(url: str) -> bool:
    """Any HTTP answer (the edge says 503 "starting" until every service answers)."""
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def service_pid(marker: str, module: str) -> int:
    """The pid of ``python -m <module>`` among the processes of the command under test."""
    for pid in processes_with_marker(marker):
        with contextlib.suppress(OSError):
            if f"-m\0{module}\0".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    raise AssertionError(f"no {module} process")


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def join_token(room: str, identity: str) -> str:
    grants = lkapi.VideoGrants(room_join=True, room=room)
    return lkapi.AccessToken("devkey", "secret").with_identity(identity).with_grants(grants).to_jwt()


async def create_and_join(port: int, room: str) -> None:
    """CreateRoom with livekit-api, then a join with the Python SDK; any 503 fails."""
    client = lkapi.LiveKitAPI(f"http://127.0.0.1:{port}", "devkey", "secret")
    try:
        created = await client.room.create_room(lkapi.CreateRoomRequest(name=room))
        assert created.name == room
    finally:
        await client.aclose()
    participant = rtc.Room()
    try:
        await asyncio.wait_for(participant.connect(f"ws://127.0.0.1:{port}", join_token(room, "alice")), 30)
        assert participant.name == room
    finally:
        await participant.disconnect()


async def egress_is_served(port: int, room: str) -> None:
    """The dev stack's egress worker takes a track egress at once (no cloud credentials: it
    records to the data directory); an unknown track then fails with the node's reason."""
    client = lkapi.LiveKitAPI(f"http://127.0.0.1:{port}", "devkey", "secret")
    try:
        started = await client.egress.start_track_egress(
            lkapi.TrackEgressRequest(room_name=room, track_id="TR_none", file=lkapi.DirectFileOutput())
        )
        assert started.status == lkapi.EgressStatus.EGRESS_STARTING

        async def failed() -> str:
            listed = await client.egress.list_egress(lkapi.ListEgressRequest(egress_id=started.egress_id))
            return listed.items[0].error if listed.items[0].status == lkapi.EgressStatus.EGRESS_FAILED else ""

        assert await poll_until(failed, timeout=20, message="the egress fails") == (
            f"track TR_none not found in room {room}"
        )
    finally:
        await client.aclose()


async def test_dev_answers_and_ctrl_c_leaves_nothing(tmp_path: Path, marker: str) -> None:
    started = time.monotonic()
    proc, port, out = start_dev(tmp_path, marker)
    await poll_until(
        lambda: proc.poll() is None and answers(f"http://127.0.0.1:{port}/"),
        timeout=15,
        interval=0.1,
        message=f"GET / on the edge (output: {out.read_text() if out.exists() else ''})",
    )
    assert time.monotonic() - started < 15
    # the rest of the stack follows the edge; the banner says everything is ready
    await poll_until(lambda: "Ctrl-C to stop" in out.read_text(), timeout=120, message="the banner")
    assert answers_200(f"http://127.0.0.1:{port}/") and answers_200(f"http://127.0.0.1:{port}/readyz")
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


async def test_running_means_the_api_and_joins_work_at_once(tmp_path: Path, marker: str) -> None:
    proc, port, out = start_dev(tmp_path, marker)
    try:
        await poll_until(
            lambda: proc.poll() is None and "Parley is running" in out.read_text(),
            timeout=120,
            interval=0.02,
            message=f"Parley is running (output: {out.read_text() if out.exists() else ''})",
        )
        await create_and_join(port, "first-room")  # no 503 no responder on parley.roomstate...
        await egress_is_served(port, "first-room")
        output = out.read_text()
        assert output.index("edge answering") < output.index("Parley is running"), output
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, out.read_text()


async def test_a_crashed_service_is_restarted_and_requests_wait_for_it(tmp_path: Path, marker: str) -> None:
    # the edge waits up to responder_wait for room-state to come back (backoff + a cold start)
    proc, port, out = start_dev(tmp_path, marker, "--set", "signaling.responder_wait=60")
    try:
        await poll_until(lambda: "Parley is running" in out.read_text(), timeout=120, message="running")
        old = service_pid(marker, "parley.room_state")
        os.kill(old, signal.SIGKILL)
        # a request already in flight at the instant of the crash is lost with the process (no RPC is
        # retried after delivery); what must not fail is a request made while it is down
        await poll_until(lambda: not alive(old), timeout=10, message="room-state died")
        await create_and_join(port, "while-restarting")  # delayed, not refused
        await poll_until(
            lambda: "room-state restarted" in out.read_text(),
            timeout=60,
            message=f"the restart is reported (output: {out.read_text()})",
        )
        output = out.read_text()
        assert "room-state exited with code -9; restarting it in" in output, output
        assert service_pid(marker, "parley.room_state") != old
        assert "parley dev: room-state exited" in (tmp_path / "dev" / "logs" / "room-state.log").read_text()
        assert proc.poll() is None, "the rest of the stack kept running"
        await create_and_join(port, "after-restart")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, out.read_text()
    await poll_until(lambda: not processes_with_marker(marker), timeout=10, message="no process left")


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


def listener_pid(port: int) -> int | None:
    """The pid listening on 127.0.0.1:``port`` (``ss`` from iproute2), None if nothing listens."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    match = re.search(r"pid=(\d+)", out)
    return int(match.group(1)) if match else None


def valkeys_under(path: Path) -> list[int]:
    """Live valkey-server processes working in ``path`` (Valkey and its sentinels chdir to their
    --dir / dir; the process title hides the rest of the command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                valkey = b"valkey-server" in (entry / "cmdline").read_bytes() and alive(int(entry.name))
                if valkey and (entry / "cwd").readlink().is_relative_to(path):
                    found.append(int(entry.name))
    return found


async def test_dev_redis_sentinel_survives_a_primary_kill_and_stops_every_part(
    tmp_path: Path, marker: str
) -> None:
    """``parley dev --redis-sentinel``: the services follow the promoted replica when the primary is
    SIGKILLed (the API and a join still work), and Ctrl-C stops the replica and the 3 sentinels too."""
    proc, port, out = start_dev(tmp_path, marker, "--redis-sentinel")
    try:
        await poll_until(lambda: "Ctrl-C to stop" in out.read_text(), timeout=120, message="the banner")
        redis_line = next(line for line in out.read_text().splitlines() if "Redis:" in line)
        assert "Sentinel 'parley'" in redis_line, redis_line
        *sentinels, primary = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", redis_line)]
        assert len(sentinels) == 3
        parts = valkeys_under(tmp_path)
        assert len(parts) == 5, "primary, replica, 3 sentinels"
        await create_and_join(port, "before-kill")

        killed = listener_pid(primary)
        assert killed in parts
        os.kill(killed, signal.SIGKILL)
        await create_and_join(port, "after-kill")  # waits for the failover, does not fail

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, out.read_text()
        await poll_until(lambda: not valkeys_under(tmp_path), timeout=10, message="no valkey left")
    finally:  # the marker fixture kills parley dev; its Valkeys run in sessions of their own
        for pid in valkeys_under(tmp_path):
            os.kill(pid, signal.SIGKILL)
