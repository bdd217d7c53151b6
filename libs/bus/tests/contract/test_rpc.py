"""RPC contract: call/serve, error codes and headers, no responders, timeouts, topics, queue groups."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from livekit.protocol import models

from parley.bus import Bus, Delivery, ErrorCode, NoResponders, RpcError, RpcTimeout
from parley.bus.responder import ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, answer

from .declarations import ECHO, GROUPED, PER_NODE, SHARED, lost_once


async def upper(req: models.Room) -> models.Room:
    if req.name == "missing":
        raise RpcError(ErrorCode.NOT_FOUND, "room does not exist")
    if req.name == "crash":
        raise ValueError("boom")
    if req.name == "slow":
        await asyncio.sleep(5)
    return models.Room(name=req.name.upper(), sid="RM_x")


async def test_call_answers_with_the_declared_response(any_bus: Bus) -> None:
    await any_bus.serve(ECHO, upper)
    reply = await any_bus.call(ECHO, models.Room(name="a"))
    assert isinstance(reply, models.Room) and (reply.name, reply.sid) == ("A", "RM_x")
    raw = await any_bus.request("t.echo", models.Room(name="b"), models.Room)  # the same wire
    assert raw.name == "B"


async def test_error_codes_and_messages_pass_through(any_bus: Bus) -> None:
    await any_bus.serve(ECHO, upper)
    with pytest.raises(RpcError) as err:
        await any_bus.call(ECHO, models.Room(name="missing"))
    assert err.value.code is ErrorCode.NOT_FOUND and err.value.message == "room does not exist"
    with pytest.raises(RpcError) as crash:
        await any_bus.call(ECHO, models.Room(name="crash"))
    assert crash.value.code is ErrorCode.INTERNAL and "ValueError: boom" in crash.value.message
    with pytest.raises(RpcError) as bad:
        await any_bus.request("t.echo", b"\xff\xff\xff", models.Room)
    assert bad.value.code is ErrorCode.MALFORMED


async def test_error_headers_are_the_wire(any_bus: Bus) -> None:
    """A responder that only speaks the headers (an empty body with ``Parley-Error-Code`` and
    ``Parley-Error-Message``) is understood as an RpcError; ``answer`` writes exactly those."""

    async def raw_responder(d: Delivery) -> None:
        await any_bus.publish(
            d.reply, b"", {ERROR_CODE_HEADER: "failed_precondition", ERROR_MESSAGE_HEADER: "no"}
        )

    await any_bus.subscribe("t.raw", raw_responder)
    with pytest.raises(RpcError) as err:
        await any_bus.request("t.raw", models.Room(), models.Room)
    assert (err.value.code, err.value.message) == (ErrorCode.FAILED_PRECONDITION, "no")

    reply = await answer("t.echo", models.Room, models.Room(name="missing").SerializeToString(), upper)
    assert reply.data == b""
    assert reply.headers == {ERROR_CODE_HEADER: "not_found", ERROR_MESSAGE_HEADER: "room does not exist"}


async def test_no_responders_and_timeouts(any_bus: Bus) -> None:
    with pytest.raises(NoResponders):
        await any_bus.call(ECHO, models.Room(), timeout=1)
    await any_bus.serve(ECHO, upper)
    with pytest.raises(RpcTimeout):
        await any_bus.call(ECHO, models.Room(name="slow"), timeout=0.3)


async def test_a_shared_rpc_waits_for_its_responder_and_a_scoped_one_does_not(any_bus: Bus) -> None:
    with pytest.raises(NoResponders):  # the default wait is 0: at once
        await any_bus.call(SHARED, models.Room())
    call = asyncio.ensure_future(any_bus.call(SHARED, models.Room(name="x"), responder_wait=30))
    await asyncio.sleep(0.3)
    assert not call.done()
    await any_bus.serve(SHARED, upper)
    assert (await asyncio.wait_for(call, 10)).name == "X"

    any_bus.responder_wait = 30  # one node's subject dies with it: no waiting there
    with pytest.raises(NoResponders):
        await asyncio.wait_for(any_bus.call(PER_NODE, models.Room(), topic="NODE_gone"), 5)


async def test_topics_select_the_subject(any_bus: Bus) -> None:
    async def node_a(req: models.Room) -> models.Room:
        return models.Room(name="a")

    async def node_b(req: models.Room) -> models.Room:
        return models.Room(name="b")

    await any_bus.serve(PER_NODE, node_a, topic="A")
    await any_bus.serve(PER_NODE, node_b, topic="B")
    assert (await any_bus.call(PER_NODE, models.Room(), topic="A")).name == "a"
    assert (await any_bus.call(PER_NODE, models.Room(), topic="B")).name == "b"
    assert (await any_bus.request("t.node.B.echo", models.Room(), models.Room)).name == "b"
    with pytest.raises(ValueError):
        await any_bus.call(PER_NODE, models.Room())  # a scoped RPC needs its topic
    with pytest.raises(ValueError):
        await any_bus.call(ECHO, models.Room(), topic="A")  # and an unscoped one takes none


async def test_a_queue_group_answers_each_call_once(any_bus: Bus) -> None:
    answered: list[str] = []

    def member(name: str) -> Callable[[models.Room], Awaitable[models.Room]]:
        async def handler(req: models.Room) -> models.Room:
            answered.append(name)
            return models.Room(name=name)

        return handler

    await any_bus.serve(GROUPED, member("one"), topic="svc")
    await any_bus.serve(GROUPED, member("two"), topic="svc")
    for _ in range(20):
        await any_bus.call(GROUPED, models.Room(), topic="svc")
    await asyncio.sleep(0.1)
    assert len(answered) == 20


async def test_serial_serving_handles_one_request_at_a_time_and_unsubscribe_stops_it(any_bus: Bus) -> None:
    handled: list[str] = []
    active = 0
    most_active = 0

    async def handler(req: models.Room) -> models.Room:
        nonlocal active, most_active
        active += 1
        most_active = max(most_active, active)
        await asyncio.sleep(0.01)
        handled.append(req.name)
        active -= 1
        return req

    sub = await any_bus.serve(ECHO, handler, concurrent=False)
    answers = await asyncio.gather(*(any_bus.call(ECHO, models.Room(name=str(i))) for i in range(10)))
    assert [a.name for a in answers] == [str(i) for i in range(10)]
    assert sorted(handled) == sorted(str(i) for i in range(10))
    assert most_active == 1, "a serial responder ran two handlers at once"
    await sub.unsubscribe()
    with pytest.raises((NoResponders, RpcTimeout)):
        await any_bus.call(ECHO, models.Room(), timeout=0.5)


async def test_an_idempotent_call_whose_request_was_lost_is_asked_again(any_bus: Bus) -> None:
    """The instance that took the first request never answers (as if SIGKILLed mid-request): an
    idempotent call asks again after ``idempotent_attempt`` and gets the answer; any other call
    times out, asked once."""
    seen: list[str] = []
    never = asyncio.Event()

    async def handler(req: models.Room) -> models.Room:
        seen.append(req.name)
        if len(seen) == 1:
            await never.wait()  # swallowed
        return models.Room(name=req.name.upper())

    any_bus.idempotent_attempt = 0.5
    read = lost_once("LostOnceRead", idempotent=True)
    await any_bus.serve(read, handler)
    assert (await any_bus.call(read, models.Room(name="x"), timeout=10)).name == "X"
    assert seen == ["x", "x"]

    seen.clear()
    write = lost_once("LostOnceWrite", idempotent=False)
    await any_bus.serve(write, handler)
    with pytest.raises(RpcTimeout):
        await any_bus.call(write, models.Room(name="y"), timeout=1.5)
    assert seen == ["y"], "a call that is not idempotent is never repeated"
    never.set()


async def test_stop_serving_answers_the_request_in_flight_and_takes_no_new_one(any_bus: Bus) -> None:
    """A graceful stop: the request a service already took is answered (queue-group peers take
    the new ones), instead of being cancelled with the service."""
    taken = asyncio.Event()
    release = asyncio.Event()

    async def slow(req: models.Room) -> models.Room:
        taken.set()
        await release.wait()
        return models.Room(name=f"done {req.name}")

    await any_bus.serve(ECHO, slow)
    in_flight = asyncio.ensure_future(any_bus.call(ECHO, models.Room(name="a"), timeout=5))
    await asyncio.wait_for(taken.wait(), 5)
    stopping = asyncio.ensure_future(any_bus.stop_serving(timeout=5))
    await asyncio.sleep(0.1)
    assert not stopping.done(), "stop_serving returned with a request still being handled"
    release.set()
    assert (await in_flight).name == "done a"
    await asyncio.wait_for(stopping, 5)
    with pytest.raises((NoResponders, RpcTimeout)):
        await any_bus.call(ECHO, models.Room(name="b"), timeout=0.5)
