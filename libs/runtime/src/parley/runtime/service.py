"""``run_service``: what every ``python -m parley.<service>`` calls."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from google.protobuf.empty_pb2 import Empty

from parley.bus import ErrorCode, NatsBus, Rpc, RpcError, bind, connect, rpcs, serve_all
from parley.config import ConfigError, ParleyConfig, load_config
from parley.observability import configure_logging, configure_metrics, configure_tracing, get_logger
from parley.runtime.health import HealthServer

C = TypeVar("C", bound=ParleyConfig)

SERVES: tuple[Rpc[Any, Any], ...] = (rpcs.PING,)
"""What ``run_service`` serves for every service (topic and queue group: the service name)."""


class Service(Protocol):
    """A long-lived component: started once, drained on SIGTERM, then closed."""

    async def start(self) -> None: ...

    async def drain(self) -> None: ...

    async def aclose(self) -> None: ...

    def healthy(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ServiceContext:
    name: str
    node_id: str
    bus: NatsBus


def parse_args(name: str, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"parley-{name}", description=f"Parley {name} service")
    parser.add_argument("--config", help="YAML config file (livekit.yaml layout)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a key"
    )
    parser.add_argument("--dev", action="store_true", help="development mode (devkey/secret)")
    parser.add_argument("--node-id", default="", help="this process's node id")
    return parser.parse_args(argv)


def load(name: str, model: type[C], argv: Sequence[str] | None) -> C:
    args = parse_args(name, argv)
    overrides = list(args.set)
    if args.dev:
        overrides.insert(0, "development=true")
    if args.node_id:
        overrides.append(f"node_id={args.node_id}")
    config = load_config(model, config_file=args.config, overrides=overrides)
    if not config.node_id:
        config.node_id = f"{name[:3].upper()}_{uuid.uuid4().hex[:12]}"
    return config


def run_service(
    name: str,
    model: type[C],
    build: Callable[[C, ServiceContext], Awaitable[Service]],
    argv: Sequence[str] | None = None,
) -> int:
    """Load config, run the service until SIGTERM/SIGINT, drain, close. Returns the exit code."""
    try:
        config = load(name, model, argv)
    except ConfigError as exc:
        print(f"parley-{name}: {exc}", file=sys.stderr)
        return 2
    configure_logging(name, config.node_id, level=config.logging.level, json_output=config.log_json)
    configure_metrics(name, config.node_id)
    configure_tracing(name, config.node_id)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_main(name, config, build))


DRAIN_TIMEOUT = 30.0
"""Seconds a service may drain unless it says otherwise (a ``drain_timeout`` attribute)."""


async def _drain(service: Service, again: asyncio.Event, log: Any) -> None:
    """Drain until done, the service's drain timeout, or a second SIGTERM/SIGINT (ends it at once)."""
    timeout = float(getattr(service, "drain_timeout", DRAIN_TIMEOUT))
    log.info("draining", timeout_s=timeout)
    drain = asyncio.ensure_future(service.drain())
    second = asyncio.ensure_future(again.wait())
    try:
        done, _ = await asyncio.wait({drain, second}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if drain not in done:
            log.warning("drain cut short", by="second signal" if second in done else "timeout")
    finally:
        for task in (drain, second):
            task.cancel()
        await asyncio.gather(drain, second, return_exceptions=True)


async def _main(name: str, config: C, build: Callable[[C, ServiceContext], Awaitable[Service]]) -> int:
    log = get_logger(f"parley.{name}")
    try:
        bus = await connect(
            config.nats.url, f"parley-{name}-{config.node_id}", connect_timeout=config.nats.connect_timeout
        )
    except Exception as exc:
        log.error("cannot start: bus unavailable", error=str(exc))
        return 3
    ctx = ServiceContext(name=name, node_id=config.node_id, bus=bus)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = await build(config, ctx)
    ready = getattr(service, "ready", None)  # optional: ready() -> bool, for /readyz (the edge's)
    health = HealthServer(
        config.bind_addresses[0],
        config.health_port,
        lambda: bus.connected and service.healthy(),
        ready if callable(ready) else None,
    )

    async def ping(_: Empty) -> Empty:
        if not service.healthy():
            raise RpcError(ErrorCode.UNAVAILABLE, f"{name} is draining")
        return Empty()

    try:
        await service.start()
        await serve_all(bus, SERVES, [bind(rpcs.PING, ping)], topic=name, concurrent=False)
        await health.start()
        log.info("service started", health_port=health.port)
        await stop.wait()
        stop.clear()
        await _drain(service, stop, log)
    except Exception:
        log.exception("service failed")
        return 1
    finally:
        # answer the requests already taken while the service can still serve them; then close it
        # (it may still publish on the bus), then the bus
        await bus.stop_serving()
        await service.aclose()
        await health.aclose()
        await bus.drain()
        log.info("stopped")
    return 0
