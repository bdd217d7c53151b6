"""Owned tasks end when cancelled, even when a library swallowed the cancellation."""

from __future__ import annotations

import asyncio

import pytest
import structlog.testing

from parley.observability.tasks import TaskSet, raise_if_cancelling, wait_event

pytestmark = pytest.mark.unit


class _Closed(Exception):
    """What nats-py raises instead of CancelledError when its connection is closing."""


async def _swallowing_wait() -> None:
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        raise _Closed from None


async def _retry_loop(honour: bool, rounds: list[int]) -> None:
    while len(rounds) < 3:
        try:
            await _swallowing_wait()
        except _Closed:
            rounds.append(1)
            if honour:
                raise_if_cancelling()


async def test_a_retry_loop_that_honours_a_swallowed_cancel_ends_cancelled() -> None:
    rounds: list[int] = []
    tasks = TaskSet("t")
    task = tasks.spawn(_retry_loop(True, rounds))
    await asyncio.sleep(0)
    await tasks.aclose(timeout=1.0)
    assert task.cancelled()
    assert rounds == [1]


async def test_without_it_each_cancel_is_lost_and_the_loop_goes_on() -> None:
    rounds: list[int] = []
    task = asyncio.get_running_loop().create_task(_retry_loop(False, rounds))
    for _ in range(3):
        await asyncio.sleep(0)
        task.cancel()
    await asyncio.wait_for(task, 1.0)
    assert not task.cancelled() and len(rounds) == 3


def test_outside_a_cancelled_task_it_does_nothing() -> None:
    async def main() -> None:
        raise_if_cancelling()

    asyncio.run(main())
    with pytest.raises(asyncio.CancelledError):
        raise asyncio.CancelledError


async def test_a_task_that_ignores_cancel_is_named_when_left_behind() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    tasks = TaskSet("owner")
    task = tasks.spawn(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    with structlog.testing.capture_logs() as logs:
        await tasks.aclose(timeout=0.05)
    assert not task.done()
    assert [(e["event"], e["tasks"]) for e in logs] == [
        ("tasks still running after cancel; left behind", ["stubborn"])
    ]
    release.set()
    await asyncio.wait_for(task, 1.0)


async def _relay_loop(wake: asyncio.Event, turns: list[int]) -> None:
    """The shape of an outbox relay: wait for a wake-up or the interval, work, again."""
    while True:
        await wait_event(wake, 10.0)
        wake.clear()
        turns.append(1)


async def test_wait_event_never_swallows_a_cancel_that_lands_with_the_event() -> None:
    """``asyncio.wait_for(event.wait(), t)`` on 3.11 returns normally here and the loop runs on."""
    wake = asyncio.Event()
    turns: list[int] = []
    loop_task = asyncio.create_task(_relay_loop(wake, turns))
    await asyncio.sleep(0)  # the loop waits
    wake.set()
    loop_task.cancel()  # the same turn
    done, _ = await asyncio.wait([loop_task], timeout=2)
    assert loop_task in done and loop_task.cancelled()


async def test_wait_event_answers_set_or_timed_out() -> None:
    event = asyncio.Event()
    assert not await wait_event(event, 0.01)
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5)
    assert await wait_event(event, 0)  # already set
    assert await wait_event(event, None)
