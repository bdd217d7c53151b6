"""Watch the TURN servers: a STUN Binding probe each ``turn.health_interval`` seconds.

A server is handed out until ``unhealthy_after`` consecutive probes fail, and again as soon as
one probe succeeds. Probes go over UDP when the server offers it, else TCP, else TLS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from parley.config.sections import TurnServerConfig
from parley.observability import TaskSet, get_logger
from parley.turn_alloc import metrics
from parley.turn_alloc.stun import ProbeFailed, insecure_tls, probe_stream, probe_udp

log = get_logger("parley.turn_alloc.health")

Prober = Callable[[TurnServerConfig, float], Awaitable[None]]


async def probe_server(server: TurnServerConfig, timeout: float) -> None:
    """Raise ProbeFailed unless the server answers a Binding request on its preferred transport."""
    if "udp" in server.transports:
        await probe_udp(server.host, server.port, timeout)
    elif "tcp" in server.transports:
        await probe_stream(server.host, server.port, timeout)
    elif "tls" in server.transports and server.tls_port:
        await probe_stream(server.host, server.tls_port, timeout, tls=insecure_tls())
    else:
        raise ProbeFailed("the server offers no transport to probe")


def server_label(server: TurnServerConfig) -> str:
    return f"{server.host}:{server.port}"


@dataclass(slots=True)
class ServerHealth:
    server: TurnServerConfig
    healthy: bool = True
    """Until the first probes say otherwise a configured server is assumed to work."""
    failures: int = 0
    last_error: str = ""
    last_probe: float = 0.0


class HealthMonitor:
    def __init__(
        self,
        servers: Sequence[TurnServerConfig],
        *,
        interval: float,
        timeout: float,
        unhealthy_after: int,
        prober: Prober = probe_server,
    ) -> None:
        self.states = [ServerHealth(server) for server in servers]
        self._interval = interval
        self._timeout = min(timeout, interval) if interval > 0 else timeout
        self._unhealthy_after = unhealthy_after
        self._prober = prober
        self._tasks = TaskSet("turn-alloc.health")

    def start(self) -> None:
        if self.states:
            self._tasks.spawn(self._loop(), name="turn-health")

    async def aclose(self) -> None:
        await self._tasks.aclose()

    def healthy(self) -> list[TurnServerConfig]:
        """The servers to hand out, in configuration order."""
        return [state.server for state in self.states if state.healthy]

    async def probe_all(self) -> None:
        await asyncio.gather(*(self._probe(state) for state in self.states))

    async def _loop(self) -> None:
        while True:
            started = time.monotonic()
            await self.probe_all()
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))

    async def _probe(self, state: ServerHealth) -> None:
        label = server_label(state.server)
        state.last_probe = time.time()
        try:
            await self._prober(state.server, self._timeout)
        except (ProbeFailed, OSError) as exc:
            state.failures += 1
            state.last_error = str(exc)
            if state.healthy and state.failures >= self._unhealthy_after:
                state.healthy = False
                metrics.health_changes.add(1, {"server": label, "healthy": "false"})
                log.warning(
                    "TURN server unhealthy: no longer handed out",
                    server=label,
                    region=state.server.region,
                    failures=state.failures,
                    error=state.last_error,
                )
            return
        if not state.healthy:
            metrics.health_changes.add(1, {"server": label, "healthy": "true"})
            log.info("TURN server healthy again", server=label, region=state.server.region)
        state.healthy = True
        state.failures = 0
        state.last_error = ""
