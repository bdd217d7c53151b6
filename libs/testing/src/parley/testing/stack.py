"""The whole Parley stack inside a test: real nats-server, real Valkey, every service as a process."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parley.config import deep_merge
from parley.devprocs import (
    READY_SERVICES,
    TEST_SERVICES,
    ManagedProcess,
    NatsServer,
    ProcessError,
    ValkeySentinelSet,
    ValkeyServer,
    free_port,
    service_process,
    wait_for_http,
)

TEST_API_KEY = "devkey"
TEST_API_SECRET = "parley-test-secret-0123456789abcdefghij"
STOP_DRAIN = 1.0


@dataclass
class ServiceInstance:
    service: str
    index: int
    overrides: list[str]
    health_port: int
    process: ManagedProcess
    port: int = 0
    grpc_port: int = 0

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"


@dataclass
class Stack:
    """Start with ``start()``; stop with ``stop()``. Logs land in ``log_dir``."""

    log_dir: Path
    services: Sequence[str] = TEST_SERVICES
    """Default: every service but the egress worker (``parley.devprocs.SERVICES`` adds it)."""
    config: dict[str, Any] = field(default_factory=dict)
    instances: dict[str, int] = field(default_factory=dict)
    instance_overrides: dict[str, list[list[str]]] = field(default_factory=dict)
    redis_sentinel: bool = False
    """Run on a Valkey primary + replica + 3 sentinels (``sentinel``) instead of one Valkey."""
    nats: NatsServer | None = None
    valkey: ValkeyServer | None = None
    sentinel: ValkeySentinelSet | None = None
    running: list[ServiceInstance] = field(default_factory=list)

    # -- addresses ------------------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return TEST_API_KEY

    @property
    def api_secret(self) -> str:
        return TEST_API_SECRET

    def edge(self, index: int = 0) -> ServiceInstance:
        return self.get("signaling", index)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.edge().port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.edge().port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.edge().grpc_port}"

    def get(self, service: str, index: int = 0) -> ServiceInstance:
        for inst in self.running:
            if inst.service == service and inst.index == index:
                return inst
        raise KeyError(f"{service}-{index} is not part of this stack")

    def all(self, service: str) -> Iterator[ServiceInstance]:
        return (inst for inst in self.running if inst.service == service)

    # -- lifecycle ------------------------------------------------------------------------------
    def base_config(self) -> dict[str, Any]:
        assert self.nats is not None
        if self.sentinel is not None:
            redis: dict[str, Any] = self.sentinel.redis_section()
        else:
            assert self.valkey is not None
            redis = {"address": self.valkey.address}
        config: dict[str, Any] = {
            "keys": {TEST_API_KEY: TEST_API_SECRET},
            "nats": {"url": self.nats.url},
            "redis": redis,
            "rtc": {"use_loopback": True, "port_range_start": 40000, "port_range_end": 49999},
            "logging": {"level": "info", "json_output": False},
        }
        deep_merge(config, copy.deepcopy(self.config))
        return config

    def start(self) -> Stack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.nats = NatsServer(store_dir=self.log_dir / "nats-store", log_path=self.log_dir / "nats.log")
        self.nats.start()
        try:
            if self.redis_sentinel:
                self.sentinel = ValkeySentinelSet(data_dir=self._dir("sentinel-data"), log_dir=self.log_dir)
                self.sentinel.start()
            else:
                self.valkey = ValkeyServer(
                    data_dir=self._dir("valkey-data"), log_path=self.log_dir / "valkey.log"
                )
                self.valkey.start()
            for service in self.services:
                for index in range(self.instances.get(service, 1)):
                    self.start_instance(service, index)
            for edge in self.all("signaling"):
                self.wait_ready(edge)
        except Exception:
            self.stop()
            raise
        return self

    def _dir(self, name: str) -> Path:
        path = self.log_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_instance(self, service: str, index: int = 0, *, wait: bool = True) -> ServiceInstance:
        per = self.instance_overrides.get(service, [])
        overrides = list(per[index]) if index < len(per) else []
        health_port = free_port()
        overrides.append(f"health_port={health_port}")
        inst_port = grpc_port = 0
        if service == "signaling":
            inst_port = free_port()
            grpc_port = free_port()
            overrides += [f"port={inst_port}", f"signaling.grpc_port={grpc_port}"]
            if "ready_requires" not in self.config.get("signaling", {}):
                # ready when the services this stack runs answer (all of them: the default)
                ready = [s for s in READY_SERVICES if s in self.services]
                overrides.append(f"signaling.ready_requires=[{', '.join(ready)}]")
        process = service_process(
            service, self.base_config(), instance=str(index), overrides=overrides, log_dir=self.log_dir
        )
        instance = ServiceInstance(service, index, overrides, health_port, process, inst_port, grpc_port)
        process.start()
        self.running.append(instance)
        if wait:
            self.wait_healthy(instance)
        return instance

    def wait_healthy(self, instance: ServiceInstance, timeout: float = 30.0) -> None:
        try:
            wait_for_http(f"http://127.0.0.1:{instance.health_port}/healthz", timeout, instance.process.proc)
        except ProcessError as exc:
            log = self.log_dir / f"{instance.service}-{instance.index}.log"
            tail = log.read_text()[-4000:] if log.exists() else "(no log)"
            raise ProcessError(
                f"{instance.name} did not become healthy: {exc}\n--- log tail ---\n{tail}"
            ) from exc

    def wait_ready(self, edge: ServiceInstance, timeout: float = 30.0) -> None:
        """Ready means ready: the edge's /readyz (every service it calls answers), as ``parley dev``
        waits for it before saying the stack runs."""
        try:
            wait_for_http(f"http://127.0.0.1:{edge.health_port}/readyz", timeout, edge.process.proc)
        except ProcessError as exc:
            raise ProcessError(
                f"{edge.name} did not become ready: {exc}\n{self.log('signaling', edge.index)[-3000:]}"
            ) from exc

    def kill(self, service: str, index: int = 0) -> None:
        """SIGKILL, as a crash would."""
        instance = self.get(service, index)
        instance.process.kill()
        self.running.remove(instance)

    def terminate(self, service: str, index: int = 0) -> None:
        instance = self.get(service, index)
        instance.process.stop()
        self.running.remove(instance)

    def restart(self, service: str, index: int = 0) -> ServiceInstance:
        """Start a fresh process of a killed or terminated instance (same ports for signaling)."""
        return self.start_instance(service, index)

    def stop(self) -> None:
        """Stop every part, edges first. A service still draining after ``STOP_DRAIN`` seconds (an SFU
        waits for its rooms to move or empty) is told to stop draining: the test is over."""
        for instance in reversed(self.running):
            instance.process.stop(drain=STOP_DRAIN)
        self.running.clear()
        if self.valkey is not None:
            self.valkey.stop()
        if self.sentinel is not None:
            self.sentinel.stop()
        if self.nats is not None:
            self.nats.stop()

    def log(self, service: str, index: int = 0) -> str:
        path = self.log_dir / f"{service}-{index}.log"
        return path.read_text() if path.exists() else ""
