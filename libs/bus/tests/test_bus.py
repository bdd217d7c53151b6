"""The bus against a real nats-server: RPC, queue groups, JetStream, and surviving a restart."""

from __future__ import annotations

import asyncio

import pytest
from livekit.protocol import models

from parley.bus import Bus, Delivery, ErrorCode, NoResponders, RpcError, connect, subjects
from parley.devprocs.processes import NatsServer
from parley.testing import poll_until

pytestmark = pytest.mark.integration


async def test_request_reply_and_error_codes(bus: Bus) -> None:
    async def handler(req: models.Room) -> models.Room:
        if req.name == "missing":
            raise RpcError(ErrorCode.NOT_FOUND, "room does not exist")
        return models.Room(name=req.name, sid="RM_x")

    await bus.serve("t.rpc", models.Room, handler, queue="q")
    reply = await bus.request("t.rpc", models.Room(name="a"), models.Room)
    assert reply.sid == "RM_x"
    with pytest.raises(RpcError) as err:
        await bus.request("t.rpc", models.Room(name="missing"), models.Room)
    assert err.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(RpcError) as bad:
        await bus.request("t.rpc", b"\xff\xff\xff", models.Room)
    assert bad.value.code is ErrorCode.MALFORMED
    with pytest.raises(NoResponders):
        await bus.request("t.nobody", models.Room(), models.Room, timeout=1)


async def test_queue_group_delivers_once(bus: Bus) -> None:
    got: list[str] = []

    async def a(d: Delivery) -> None:
        got.append("a")

    async def b(d: Delivery) -> None:
        got.append("b")

    await bus.subscribe("t.q", a, queue="g")
    await bus.subscribe("t.q", b, queue="g")
    for _ in range(20):
        await bus.publish("t.q", b"x")
    await poll_until(lambda: len(got) == 20, message="20 deliveries")
    await asyncio.sleep(0.1)
    assert len(got) == 20


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


async def test_request_waits_for_a_shared_responder_to_appear(bus: Bus) -> None:
    """A restarting room-state delays a request up to ``responder_wait``; one node's subject does not."""

    async def handler(req: models.Room) -> models.Room:
        return models.Room(name=req.name.upper())

    subject = subjects.room_state_rpc("WaitTest")
    sent = bus.client.stats["out_msgs"]
    call = asyncio.ensure_future(bus.request(subject, models.Room(name="x"), models.Room, responder_wait=30))
    # two attempts found nobody, and the call still waits
    await poll_until(lambda: bus.client.stats["out_msgs"] >= sent + 2, timeout=10, message="a second attempt")
    assert not call.done()
    await bus.serve(subject, models.Room, handler, queue="room-state")
    assert (await asyncio.wait_for(call, 10)).name == "X"

    with pytest.raises(NoResponders):  # the default: at once
        await bus.request(subjects.room_state_rpc("Nobody"), models.Room(), models.Room)
    bus.responder_wait = 30  # a node that is gone does not come back: no waiting there
    with pytest.raises(NoResponders):
        await asyncio.wait_for(bus.request(subjects.sfu_command("NODE_gone"), models.Room(), models.Room), 5)
    bus.responder_wait = 0.2
    with pytest.raises(NoResponders):
        await bus.request(subjects.room_state_rpc("Nobody"), models.Room(), models.Room)
