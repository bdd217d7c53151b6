"""A real service process (the signaling edge): /healthz, /metrics, drain and exit 0 on SIGTERM."""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.empty_pb2 import Empty

from parley.bus import connect, rpcs
from parley.devprocs.processes import ManagedProcess, NatsServer, free_port, service_process
from parley.testing import poll_until

pytestmark = pytest.mark.integration

SECRET = "runtime-test-secret-0123456789abcdef"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


def edge(config: dict[str, Any], log_dir: Path) -> tuple[ManagedProcess, int]:
    health_port = free_port()
    process = service_process(
        "signaling",
        {"keys": {"APIruntime": SECRET}, "logging": {"json_output": True}, **config},
        overrides=[f"health_port={health_port}", f"port={free_port()}", f"signaling.grpc_port={free_port()}"],
        log_dir=log_dir,
    )
    process.start()
    return process, health_port


async def test_health_metrics_and_drain_on_sigterm(nats_server: NatsServer, tmp_path: Path) -> None:
    process, health_port = edge({"nats": {"url": nats_server.url}}, tmp_path)
    try:
        base = f"http://127.0.0.1:{health_port}"
        await poll_until(lambda: get(f"{base}/healthz")[0] == 200, timeout=60, message="/healthz")
        assert get(f"{base}/readyz")[0] == 503  # alive, but no room-state, SFU... answers it
        bus = await connect(nats_server.url, "runtime-test")
        try:  # every service answers its ping once started
            await bus.call(rpcs.PING, Empty(), topic="signaling", timeout=5)
        finally:
            await bus.aclose()
        status, metrics = get(f"{base}/metrics")
        assert status == 200
        assert "# TYPE" in metrics or metrics == ""  # Prometheus text exposition

        assert process.proc is not None
        process.proc.send_signal(signal.SIGTERM)
        assert process.proc.wait(timeout=30) == 0
        log = (tmp_path / "signaling.log").read_text()
        assert '"draining"' in log and '"stopped"' in log
        assert get(f"{base}/healthz")[0] == 0  # nothing listens any more
    finally:
        process.stop()


async def test_exits_2_naming_the_invalid_key(tmp_path: Path) -> None:
    process, _ = edge({"rtc": {"port_range_start": "low"}}, tmp_path)
    try:
        assert process.proc is not None
        assert process.proc.wait(timeout=60) == 2
        assert "rtc.port_range_start" in (tmp_path / "signaling.log").read_text()
    finally:
        process.stop()
