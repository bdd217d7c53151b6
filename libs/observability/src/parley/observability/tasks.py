"""Owned background tasks: nothing runs as an orphan, every failure is logged."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from parley.observability.log import get_logger

T = TypeVar("T")
_log = get_logger("parley.tasks")


class TaskSet:
    """Keeps strong references to its tasks, logs their crashes and cancels them all on close."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name or f"{self._name}.task")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            _log.error("task crashed", task=task.get_name(), owner=self._name, exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def join(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` for the tasks running now to end by themselves (no cancel);
        the names of those still running."""
        tasks = list(self._tasks)
        if not tasks:
            return []
        _, late = await asyncio.wait(tasks, timeout=timeout)
        return sorted(t.get_name() for t in late)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Cancel every task and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            if late:
                _log.warning(
                    "tasks still running after cancel; left behind",
                    owner=self._name,
                    tasks=sorted(t.get_name() for t in late),
                    timeout=timeout,
                )
        self._tasks.clear()


def raise_if_cancelling() -> None:
    """Re-raise a cancellation a library swallowed.

    nats-py turns a cancelled ``next_msg``/``fetch`` on a closing connection into
    ``ConnectionClosedError``; a retry loop that catches ``Exception`` would then run forever.
    The task's cancel request is still counted (``cancelling()``), so honour it here.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Whether ``event`` is set within ``timeout`` seconds (None: no limit).

    Use this, not ``asyncio.wait_for(event.wait(), timeout)``: on Python 3.11 ``wait_for`` swallows
    a cancel that arrives in the same loop turn as the event is set, and a loop built on it then
    runs on after its owner cancelled it (a room-state outbox relay did, and hung a test run).
    """
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if asyncio.current_task() is not None and asyncio.current_task().cancelling():  # type: ignore[union-attr]
            raise
    except Exception:
        _log.exception("task failed while cancelled", task=task.get_name())
