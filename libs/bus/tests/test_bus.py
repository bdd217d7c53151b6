"""NatsBus against a real nats-server: JetStream, surviving a restart, retries seen on the wire.

What every bus must do (RPC, error codes, queue groups, wildcards) is the contract suite in
``contract/``, run against NatsBus and MemoryBus alike."""

from __future__ import annotations

import asyncio
import time

import pytest
from livekit.protocol import models

from parley.bus import Delivery, NatsBus, NoResponders, Rpc, connect, subjects
from parley.devprocs.processes import NatsServer
from parley.testing import poll_until

pytestmark = pytest.mark.integration


async def test_survives_server_restart(nats_server: NatsServer) -> None:
    """Reconnect, resubscribe, and a durable JetStream consumer resumes without loss."""
    bus = await connect(nats_server.url, "restart-test")
    try:
        await bus.ensure_stream(subjects.EVENTS_STREAM, [subjects.EVENTS_ALL])
        plain: list[bytes] = []
        durable: list[bytes] = []

        async def on_plain(d: Delivery) -> None:
            plain.append(d.data)

        async def on_durable(d: Delivery) -> None:
            durable.append(d.data)
            await d.ack()

        await bus.subscribe("t.plain", on_plain)
        bus.consume(
            subjects.EVENTS_STREAM, "restart-durable", on_durable, filter_subject=subjects.ROOM_EVENTS_ALL
        )
        for i in range(5):
            await bus.publish_durable(subjects.room_events("r"), f"before-{i}".encode(), msg_id=f"b{i}")
        await poll_until(lambda: len(durable) == 5, message="events before the restart")

        nats_server.stop()
        await poll_until(lambda: not bus.connected, message="disconnect")
        nats_server.start()
        await poll_until(lambda: bus.connected, timeout=15, message="reconnect")

        async def publish_after() -> bool:
            for i in range(5):
                await bus.publish_durable(subjects.room_events("r"), f"after-{i}".encode(), msg_id=f"a{i}")
            return True

        await poll_until(publish_after, timeout=15, message="jetstream back")

        async def plain_roundtrip() -> bool:
            await bus.publish("t.plain", b"ping")
            await asyncio.sleep(0.05)
            return bool(plain)

        await poll_until(plain_roundtrip, timeout=10, message="resubscribed core subscription")
        await poll_until(lambda: len(durable) >= 10, timeout=20, message="events after the restart")
        assert sorted(set(durable)) == sorted(
            {f"before-{i}".encode() for i in range(5)} | {f"after-{i}".encode() for i in range(5)}
        )
    finally:
        await bus.aclose()


WAIT_TEST: Rpc[models.Room, models.Room] = Rpc(
    "WaitTest",
    models.Room,
    models.Room,
    subjects.room_state_rpc("WaitTest"),
    "test",
    queue="room-state",
    shared=True,
)


async def test_request_waits_for_a_shared_responder_to_appear(bus: NatsBus) -> None:
    """A restarting room-state delays a request up to ``responder_wait``; one node's subject does not."""

    async def handler(req: models.Room) -> models.Room:
        return models.Room(name=req.name.upper())

    sent = bus.client.stats["out_msgs"]
    call = asyncio.ensure_future(bus.call(WAIT_TEST, models.Room(name="x"), responder_wait=30))
    # two attempts found nobody, and the call still waits
    await poll_until(lambda: bus.client.stats["out_msgs"] >= sent + 2, timeout=10, message="a second attempt")
    assert not call.done()
    await bus.serve(WAIT_TEST, handler)
    assert (await asyncio.wait_for(call, 10)).name == "X"

    with pytest.raises(NoResponders):  # the default: at once
        await bus.request(subjects.room_state_rpc("Nobody"), models.Room(), models.Room)
    bus.responder_wait = 30  # a node that is gone does not come back: no waiting there
    with pytest.raises(NoResponders):
        await asyncio.wait_for(bus.request(subjects.sfu_command("NODE_gone"), models.Room(), models.Room), 5)
    bus.responder_wait = 0.2
    with pytest.raises(NoResponders):
        await bus.request(subjects.room_state_rpc("Nobody"), models.Room(), models.Room)


async def test_drain_with_an_idle_durable_consumer_ends_promptly(nats_server: NatsServer) -> None:
    """A graceful stop (``drain``) of a bus whose durable consumer idles in ``fetch`` ends at once:
    the consumer's pull subscription is removed, not left to hold nats-py's drain (30 s) with the
    fetch-timeout status message still queued in it (dispatch took 30 s to stop on SIGTERM)."""
    bus = await connect(nats_server.url, "drain-test")
    await bus.ensure_stream(subjects.EVENTS_STREAM, [subjects.EVENTS_ALL])
    seen: list[bytes] = []

    async def on_event(d: Delivery) -> None:
        seen.append(d.data)
        await d.ack()

    bus.consume(subjects.EVENTS_STREAM, "drain-durable", on_event, batch=1)
    await bus.publish_durable(subjects.room_events("r"), b"one", msg_id="one")
    await poll_until(lambda: seen == [b"one"], message="the event")
    await asyncio.sleep(2.5)  # idle: at least two fetches time out
    started = time.monotonic()
    await bus.drain()
    # a hang, not a speed: held, the drain lasts nats-py's drain_timeout (30 s); free, milliseconds
    assert time.monotonic() - started < 10
