"""The processes of ``parley dev``: nats-server, Valkey and one process per service.

Started in that order, stopped in reverse (services first, then Valkey, then NATS), so that
no process outlives the command. The stack counts as started when the edge says it is ready
(its /readyz: every service it calls answers). A service that exits afterwards is started
again after a backoff (``supervise``); one that keeps crashing stops the command.
"""

from __future__ import annotations

import contextlib
import importlib.util
import secrets
import shutil
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from parley.cli.devconfig import DevPlan
from parley.cli.errors import DevStackError
from parley.devprocs.coturn import INSTALL_HINT, Coturn, coturn_available
from parley.devprocs.processes import ManagedProcess, NatsServer, ValkeyServer, free_port, service_process
from parley.devprocs.sentinel import ValkeySentinelSet

START_TIMEOUT = 90.0
"""Seconds a service may take to answer /healthz (first start compiles bytecode on 2 busy cores)."""
READY_TIMEOUT = 60.0
"""Seconds the edge may take to see every service answer once they all answer /healthz."""
RESTART_BACKOFF_MIN = 0.5
RESTART_BACKOFF_MAX = 30.0
"""Seconds before restarting a crashed service: doubling per crash in a row, capped."""
RESTART_STABLE_AFTER = 60.0
"""A service that ran this long before crashing starts a new series of restarts."""
MAX_CRASHES_IN_A_ROW = 5
"""More quick crashes than this in a row and ``parley dev`` gives up (stops everything)."""
LOG_TAIL_CHARS = 4000
EDGE = "signaling"
DEFAULT_NATS_PORT = 4222
DEFAULT_VALKEY_PORT = 6379


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


def has_main(service: str) -> bool:
    """Whether ``python -m parley.<service>`` can run yet."""
    module = "parley." + service.replace("-", "_")
    try:
        return importlib.util.find_spec(module + ".__main__") is not None
    except ModuleNotFoundError:
        return False


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def preferred_port(port: int) -> int:
    """``port`` when it is free, otherwise any free port."""
    return port if port_is_free(port) else free_port()


@dataclass
class RunningService:
    name: str
    process: ManagedProcess
    health_port: int
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    crashes: int = 0
    """Crashes in a row, each within RESTART_STABLE_AFTER of its start."""
    restart_at: float | None = None
    """When a crashed service is due to start again (monotonic)."""
    announced: bool = True
    """Whether its (re)start was reported: a restarted service is once it answers /healthz."""


@dataclass
class DevStack:
    plan: DevPlan
    data_dir: Path
    services: Sequence[str]
    nats_port: int = 0
    valkey_port: int = 0
    redis_sentinel: bool = False
    """Embedded Redis as a Valkey primary + replica + 3 sentinels (``--redis-sentinel``)."""
    stopping: threading.Event = field(default_factory=threading.Event)
    nats: NatsServer | None = None
    valkey: ValkeyServer | None = None
    sentinel: ValkeySentinelSet | None = None
    coturn: Coturn | None = None
    running: list[RunningService] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def prepare(self) -> None:
        """A fresh state per run (like ``livekit-server --dev``): logs, NATS store and Valkey data."""
        for name in ("logs", "nats", "valkey"):
            shutil.rmtree(self.data_dir / name, ignore_errors=True)
        for name in ("logs", "nats", "valkey"):
            (self.data_dir / name).mkdir(parents=True, exist_ok=True)

    def start(self, on_progress: Callable[[str], None] = lambda _: None) -> None:
        self.prepare()
        if not self.plan.sets("egress_worker.local_dir"):  # recordings stay with the dev data
            self.plan.body.setdefault("egress_worker", {})["local_dir"] = str(self.data_dir / "recordings")
        if self.plan.embedded_nats:
            self.nats = NatsServer(
                port=self.nats_port or preferred_port(DEFAULT_NATS_PORT),
                store_dir=self.data_dir / "nats",
                log_path=self.log_dir / "nats.log",
            )
            on_progress(f"starting nats-server (JetStream) on {self.nats.url}")
            self._start_infra("nats-server", self.nats.start, self.log_dir / "nats.log")
            self.plan.use_nats(self.nats.url)
        if self.plan.embedded_valkey and self.redis_sentinel:
            self.sentinel = ValkeySentinelSet(data_dir=self.data_dir / "valkey", log_dir=self.log_dir)
            on_progress("starting valkey primary + replica + 3 sentinels (Redis Sentinel)")
            self._start_infra("valkey sentinel set", self.sentinel.start, self.log_dir / "sentinel-0.log")
            self.plan.use_redis_sentinel(self.sentinel.redis_section(), self.sentinel.primary_address() or "")
        elif self.plan.embedded_valkey:
            self.valkey = ValkeyServer(
                port=self.valkey_port or preferred_port(DEFAULT_VALKEY_PORT),
                data_dir=self.data_dir / "valkey",
                log_path=self.log_dir / "valkey.log",
            )
            on_progress(f"starting valkey on {self.valkey.address}")
            self._start_infra("valkey", self.valkey.start, self.log_dir / "valkey.log")
            self.plan.use_redis(self.valkey.address)
        turn = self.plan.config.turn
        if turn.enabled and not turn.servers:
            if coturn_available():
                self.coturn = Coturn(
                    turn.secret or secrets.token_urlsafe(24), log_path=self.log_dir / "coturn.log"
                )
                on_progress(f"starting coturn (TURN) on {self.coturn.turn_url}")
                self._start_infra("coturn", self.coturn.start, self.log_dir / "coturn.log")
                self.plan.use_turn(self.coturn.turn_section(self.plan.config.region))
            else:
                on_progress(
                    f"warning: turn.enabled is set but coturn is not installed: {INSTALL_HINT}; no TURN"
                )
        # The edge first: it answers (503 "starting" until ready) while the rest is importing.
        edge_first = sorted(self.services, key=lambda s: s != EDGE)
        edge: RunningService | None = None
        if edge_first and edge_first[0] == EDGE:
            edge = self._launch(EDGE)
            on_progress(f"starting {EDGE}")
            self._wait_http(f"http://127.0.0.1:{edge.health_port}/healthz", edge)
            self._wait_http(f"http://127.0.0.1:{self.plan.config.port}/", edge, any_status=True)
            on_progress(f"edge answering on http://127.0.0.1:{self.plan.config.port} (not ready yet)")
            edge_first = edge_first[1:]
        launched = [self._launch(service) for service in edge_first]
        if launched:
            on_progress(f"starting {', '.join(edge_first)}")
        for running in launched:
            self._wait_http(f"http://127.0.0.1:{running.health_port}/healthz", running)
        if edge is not None:
            on_progress("waiting for the edge to see every service answer")
            self._wait_http(f"http://127.0.0.1:{self.plan.config.port}/readyz", edge, timeout=READY_TIMEOUT)

    def _start_infra(self, name: str, start: Callable[[], None], log_path: Path) -> None:
        try:
            start()
        except Exception as exc:
            raise DevStackError(f"{name} did not start: {exc}\n{_tail(log_path)}") from exc

    def _launch(self, service: str) -> RunningService:
        running = self._spawn(service)
        self.running.append(running)
        return running

    def _spawn(self, service: str) -> RunningService:
        health_port = free_port()
        body, overrides = self.plan.for_service(service)
        process = service_process(
            service,
            body,
            overrides=[*overrides, f"health_port={health_port}"],
            log_dir=self.log_dir,
        )
        assert process.log_path is not None
        running = RunningService(service, process, health_port, process.log_path)
        process.start()
        return running

    def _wait_http(
        self, url: str, service: RunningService, *, any_status: bool = False, timeout: float = START_TIMEOUT
    ) -> None:
        """Until ``url`` answers 200 (any HTTP answer with ``any_status``)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.stopping.is_set():
                raise Interrupted
            proc = service.process.proc
            if proc is not None and proc.poll() is not None:
                raise DevStackError(
                    f"{service.name} exited with code {proc.returncode} while starting\n{_tail(service.log_path)}"
                )
            if _answers(url, any_status=any_status):
                return
            if time.monotonic() > deadline:
                raise DevStackError(
                    f"{service.name}: {url} did not answer within {timeout:.0f}s\n{_tail(service.log_path)}"
                )
            self.stopping.wait(0.1)

    def supervise(self, on_progress: Callable[[str], None] = lambda _: None) -> None:
        """One round of supervision (call it often): restart what exited although nobody asked it
        to, after a backoff; raise DevStackError once a service crashed too often in a row."""
        now = time.monotonic()
        for index, running in enumerate(self.running):
            if running.restart_at is None and running.process.running:
                if not running.announced and _answers(f"http://127.0.0.1:{running.health_port}/healthz"):
                    running.announced = True
                    on_progress(f"{running.name} restarted (restart {running.crashes}) and answers again")
                continue
            if running.restart_at is None:
                self._schedule_restart(running, now, on_progress)
            elif now >= running.restart_at:
                running.process.stop()  # already exited: closes its log
                fresh = self._spawn(running.name)
                fresh.crashes, fresh.announced = running.crashes, False
                self.running[index] = fresh

    def _schedule_restart(
        self, running: RunningService, now: float, on_progress: Callable[[str], None]
    ) -> None:
        proc = running.process.proc
        code = proc.returncode if proc is not None else None
        quick = now - running.started_at < RESTART_STABLE_AFTER
        running.crashes = running.crashes + 1 if quick else 1
        if running.crashes > MAX_CRASHES_IN_A_ROW:
            raise DevStackError(
                f"{running.name} exited with code {code}, {running.crashes} times in a row; giving up\n"
                f"{_tail(running.log_path)}"
            )
        delay = min(RESTART_BACKOFF_MIN * 2 ** (running.crashes - 1), RESTART_BACKOFF_MAX)
        running.restart_at = now + delay
        note = f"{running.name} exited with code {code}; restarting it in {delay:.1f}s"
        on_progress(note)
        with contextlib.suppress(OSError), running.log_path.open("a") as log:
            log.write(f"--- parley dev: {note} ---\n")

    def tail(self, service: RunningService) -> str:
        return _tail(service.log_path)

    def stop(self) -> None:
        """Services first (all signalled, then awaited), then Valkey, then NATS."""
        for running in self.running:
            proc = running.process.proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for running in reversed(self.running):
            running.process.stop(timeout=15)
        self.running.clear()
        if self.coturn is not None:
            self.coturn.close()
        if self.valkey is not None:
            self.valkey.stop()
        if self.sentinel is not None:
            self.sentinel.stop()
        if self.nats is not None:
            self.nats.stop()


def _answers(url: str, *, any_status: bool = False) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return any_status
    except Exception:
        return False


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return f"--- last lines of {path} ---\n{text[-LOG_TAIL_CHARS:]}"
