"""Publish/subscribe contract: order, wildcards, queue groups, unsubscribe."""

from __future__ import annotations

import asyncio

from parley.bus import Bus, Delivery, Handler
from parley.testing import poll_until


async def test_each_subscription_sees_its_messages_in_order(any_bus: Bus) -> None:
    got: list[bytes] = []

    async def slow(d: Delivery) -> None:
        await asyncio.sleep(0.001)
        got.append(d.data)

    await any_bus.subscribe("t.order", slow)
    for i in range(30):
        await any_bus.publish("t.order", str(i).encode())
    await poll_until(lambda: len(got) == 30, message="30 deliveries")
    assert got == [str(i).encode() for i in range(30)]


async def test_wildcards(any_bus: Bus) -> None:
    star: list[str] = []
    rest: list[str] = []

    async def on_star(d: Delivery) -> None:
        star.append(d.subject)

    async def on_rest(d: Delivery) -> None:
        rest.append(d.subject)

    await any_bus.subscribe("t.w.*", on_star)
    await any_bus.subscribe("t.w.>", on_rest)
    for subject in ("t.w.a", "t.w.a.b", "t.w", "t.x.a"):
        await any_bus.publish(subject, b"x", {"k": "v"})
    await poll_until(lambda: len(rest) == 2 and len(star) == 1, message="wildcard deliveries")
    await asyncio.sleep(0.1)
    assert star == ["t.w.a"]
    assert sorted(rest) == ["t.w.a", "t.w.a.b"]


async def test_queue_group_delivers_once_and_plain_subscribers_all(any_bus: Bus) -> None:
    group: list[str] = []
    plain: list[str] = []

    def collect(into: list[str], name: str) -> Handler:
        async def handler(d: Delivery) -> None:
            into.append(name)
            assert d.headers.get("k") == "v"

        return handler

    await any_bus.subscribe("t.q", collect(group, "a"), queue="g")
    await any_bus.subscribe("t.q", collect(group, "b"), queue="g")
    await any_bus.subscribe("t.q", collect(plain, "p"))
    for _ in range(20):
        await any_bus.publish("t.q", b"x", {"k": "v"})
    await poll_until(lambda: len(group) == 20 and len(plain) == 20, message="20 deliveries each")
    await asyncio.sleep(0.1)
    assert len(group) == 20 and len(plain) == 20


async def test_unsubscribe_stops_delivery(any_bus: Bus) -> None:
    got: list[bytes] = []

    async def handler(d: Delivery) -> None:
        got.append(d.data)

    sub = await any_bus.subscribe("t.u", handler)
    await any_bus.publish("t.u", b"1")
    await poll_until(lambda: got == [b"1"], message="first delivery")
    await sub.unsubscribe()
    await sub.unsubscribe()  # idempotent
    await any_bus.publish("t.u", b"2")
    await asyncio.sleep(0.2)
    assert got == [b"1"]
