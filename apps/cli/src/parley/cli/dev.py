"""``parley dev``: the whole stack on this machine, what ``make dev`` runs."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from parley.cli.errors import UsageError

if TYPE_CHECKING:
    from parley.cli.devstack import DevStack

DEFAULT_GRPC_PORT = 7890


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = commands.add_parser(
        "dev",
        help="run nats-server, Valkey and every service on this machine",
        description="Start an embedded nats-server (JetStream) and Valkey, unless external ones are "
        "given, then every Parley service as its own process. Ctrl-C stops them all.",
    )
    dev.add_argument("--port", type=int, default=None, help="edge HTTP/WebSocket port (default 7880)")
    dev.add_argument("--nats-url", default=None, help="use this NATS (with JetStream) instead of our own")
    dev.add_argument("--redis-address", default=None, metavar="HOST:PORT", help="use this Redis/Valkey")
    dev.add_argument(
        "--redis-sentinel",
        action="store_true",
        help="embedded Redis as a Valkey primary + replica + 3 sentinels (try a failover: kill the primary)",
    )
    dev.add_argument("--nats-port", type=int, default=0, help="embedded NATS port (default 4222, else free)")
    dev.add_argument(
        "--valkey-port", type=int, default=0, help="embedded Valkey port (default 6379, else free)"
    )
    dev.add_argument("--config", default=None, metavar="FILE", help="YAML config (livekit.yaml layout)")
    dev.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config key"
    )
    dev.add_argument("--data-dir", default=None, help="logs and data (default: .dev in the repo)")
    dev.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # imported here: `parley token` should not pay for the process runtime
    from parley.cli import devconfig
    from parley.cli.devstack import DevStack, Interrupted, has_main, port_is_free, preferred_port
    from parley.devprocs.processes import READY_SERVICES, SERVICES

    plan = devconfig.plan(
        config_file=args.config,
        port=args.port,
        nats_url=args.nats_url,
        redis_address=args.redis_address,
        sets=args.set,
    )
    if args.redis_sentinel and not plan.embedded_valkey:
        raise UsageError(
            "--redis-sentinel starts its own Valkey: drop redis.address / redis.sentinel_addresses"
        )
    port = plan.config.port
    if not port_is_free(port):
        raise UsageError(f"port {port} is in use: stop what uses it or pass --port")
    if not plan.sets("signaling.grpc_port"):
        plan.overrides.insert(0, f"signaling.grpc_port={preferred_port(DEFAULT_GRPC_PORT)}")
    services = [s for s in SERVICES if has_main(s)]  # the one line to drop once every service has __main__
    if not plan.sets("signaling.ready_requires"):  # the edge waits for what runs here
        ready = [s for s in READY_SERVICES if s in services]
        plan.overrides.insert(0, f"signaling.ready_requires=[{', '.join(ready)}]")
    for missing in (s for s in SERVICES if s not in services):
        say(f"warning: skipping {missing}: python -m parley.{missing.replace('-', '_')} does not exist yet")
    stack = DevStack(
        plan=plan,
        data_dir=data_dir(args.data_dir),
        services=services,
        nats_port=args.nats_port,
        valkey_port=args.valkey_port,
        redis_sentinel=args.redis_sentinel,
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stack.stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        stack.start(on_progress=say)
        banner(stack)
        while not stack.stopping.wait(0.5):
            stack.supervise(on_progress=say)  # restarts a crashed service; raises when it keeps crashing
        say("stopping…")
        return 0
    except Interrupted:
        say("interrupted while starting; stopping…")
        return 130
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if stack.stopping.is_set():
            say("stopped")


def data_dir(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).resolve()
    root = Path(__file__).resolve().parents[5]
    if (root / "libs" / "cli" / "pyproject.toml").exists():
        return root / ".dev"
    return Path(tempfile.mkdtemp(prefix="parley-dev-"))


def banner(stack: DevStack) -> None:
    config = stack.plan.config
    key, secret = next(iter(config.keys.items()))
    nats = f"{config.nats.url}{' (embedded)' if stack.nats else ''}"
    redis = f"{config.redis.address}{' (embedded)' if stack.valkey else ''}"
    if config.redis.uses_sentinel:
        embedded = f" (embedded: primary {config.redis.address} + replica)" if stack.sentinel else ""
        redis = (
            f"Sentinel {config.redis.sentinel_master_name!r} at {', '.join(config.redis.sentinel_addresses)}"
            f"{embedded}"
        )
    lines = [
        "",
        "Parley is running",
        f"  URL:         http://127.0.0.1:{config.port}   (WebSocket: ws://127.0.0.1:{config.port})",
        f"  API key:     {key}",
        f"  API secret:  {secret}",
        f"  NATS:        {nats}",
        f"  Redis:       {redis}",
        f"  Services:    {', '.join(r.name for r in stack.running)}",
        *([f"  TURN:        {stack.coturn.turn_url} (embedded coturn)"] if stack.coturn else []),
        f"  Logs:        {stack.log_dir}",
        "",
        f"  Token:       parley token create --room my-room --identity alice --url http://127.0.0.1:{config.port}",
        "",
        "Ctrl-C to stop.",
    ]
    say("\n".join(lines))


def say(text: str) -> None:
    print(text, flush=True)
    sys.stdout.flush()
