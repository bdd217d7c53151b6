"""One contract suite, two buses: every test here runs against NatsBus (a real nats-server) and
MemoryBus, as LiveKit's psrpc runs one suite against redis, nats and local."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from parley.bus import Bus, MemoryBus, connect
from parley.devprocs.processes import NatsServer

IMPLEMENTATIONS = [
    pytest.param("nats", marks=pytest.mark.integration, id="nats"),
    pytest.param("memory", marks=pytest.mark.unit, id="memory"),
]


@pytest_asyncio.fixture(params=IMPLEMENTATIONS)
async def any_bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    bus: Bus
    if request.param == "nats":
        server: NatsServer = request.getfixturevalue("nats_server")
        bus = await connect(server.url, "contract")
    else:
        bus = MemoryBus("contract")
    yield bus
    await bus.aclose()
