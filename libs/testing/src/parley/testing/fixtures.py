"""pytest plugin: ``pytest_plugins = ["parley.testing.fixtures"]``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from parley.bus import NatsBus, connect
from parley.devprocs.processes import NatsServer, ValkeyServer
from parley.testing.log_audit import audit
from parley.testing.netns import NetNamespace
from parley.testing.stack import Stack


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server with JetStream on a free port, stopped when the test ends."""
    server = NatsServer(store_dir=tmp_path / "nats", log_path=tmp_path / "nats.log")
    server.start()
    yield server
    server.close()


@pytest.fixture
def valkey_server(tmp_path: Path) -> Iterator[ValkeyServer]:
    """A real Valkey on a free port, stopped when the test ends."""
    (tmp_path / "valkey").mkdir()
    server = ValkeyServer(data_dir=tmp_path / "valkey", log_path=tmp_path / "valkey.log")
    server.start()
    yield server
    server.close()


@pytest_asyncio.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[NatsBus]:
    b = await connect(nats_server.url, "test")
    yield b
    await b.aclose()


@pytest_asyncio.fixture
async def redis_client(valkey_server: ValkeyServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(f"redis://{valkey_server.address}/0")
    yield client
    await client.aclose()


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Factory: ``make_stack(services=[...], config={...}, instances={"sfu": 2})`` starts a stack."""
    stacks: list[Stack] = []

    def factory(**kwargs: Any) -> Stack:
        stack = Stack(log_dir=tmp_path / f"stack{len(stacks)}", **kwargs)
        stacks.append(stack)
        return stack.start()

    yield factory
    for stack in stacks:
        stack.stop()


@pytest.fixture
def make_netns() -> Iterator[Callable[[], NetNamespace]]:
    """Factory: ``make_netns()`` creates a ``NetNamespace``, deleted when the test ends."""
    made: list[NetNamespace] = []

    def factory() -> NetNamespace:
        made.append(NetNamespace())
        return made[-1]

    yield factory
    for ns in made:
        ns.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any log a test produced holds a token or the API secret."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or session.config.getoption("collectonly"):
        return
    try:
        root = factory.getbasetemp()
    except Exception:
        return
    leaks = audit(root)
    if not leaks:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"secrets in logs ({len(leaks)} lines):", *(f"  {leak}" for leak in leaks[:50])]
    if reporter is not None:
        reporter.write_sep("=", "log audit failed", red=True)
        for line in lines:
            reporter.write_line(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
