"""DurablePublisher contract: a repeated msg id is stored once (same sequence); plain subscribers
see every publish, as on NATS."""

from __future__ import annotations

import asyncio

from parley.bus import Bus, Delivery, MemoryBus, NatsBus
from parley.testing import poll_until


async def test_publish_durable_deduplicates_by_msg_id(any_bus: Bus) -> None:
    assert isinstance(any_bus, NatsBus | MemoryBus)
    if isinstance(any_bus, NatsBus):
        await any_bus.ensure_stream("CONTRACT", ["t.durable.>"], memory=True)
    got: list[bytes] = []

    async def on_message(d: Delivery) -> None:
        got.append(d.data)

    await any_bus.subscribe("t.durable.>", on_message)
    first = await any_bus.publish_durable("t.durable.a", b"1", msg_id="m1")
    again = await any_bus.publish_durable("t.durable.a", b"1", msg_id="m1")
    second = await any_bus.publish_durable("t.durable.b", b"2", msg_id="m2")
    assert first == again and second > first
    await poll_until(lambda: len(got) == 3, message="every publish")
    await asyncio.sleep(0.1)
    assert got == [b"1", b"1", b"2"]
