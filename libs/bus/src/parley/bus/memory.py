"""An in-process bus for unit tests: the ``Bus`` contract without a nats-server.

Same subjects, wildcards (``*`` one token, ``>`` the rest), queue groups (one member per message,
round robin), per-subscription ordering, no-responders (nobody subscribed), timeouts, and the same
error headers as NATS (``responder.py``); ``publish_durable`` de-duplicates by msg id. The contract suite in ``libs/bus/tests/contract`` runs
against this and ``NatsBus`` alike.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

from parley.bus import calling, subjects
from parley.bus.calling import IDEMPOTENT_ATTEMPT
from parley.bus.contract import Req, Resp, Rpc
from parley.bus.delivery import Delivery, Handler
from parley.bus.errors import BusError, NoResponders, RpcTimeout
from parley.bus.interfaces import Payload, encode
from parley.bus.nats_bus import MSG_ID_HEADER
from parley.bus.responder import STOP_SERVING_TIMEOUT, Reply, answer, read_reply
from parley.observability import TaskSet, get_logger

log = get_logger("parley.bus.memory")

INBOX = "_INBOX."


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a final ``>`` one or more."""
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(want) == len(got)


class MemorySubscription:
    """One subscriber: its own queue and task, so its messages are handled in order."""

    def __init__(self, bus: MemoryBus, subject: str, queue: str, handler: Handler) -> None:
        self.subject = subject
        self.queue = queue
        self._bus = bus
        self._handler = handler
        self._inbox: asyncio.Queue[Delivery] = asyncio.Queue()
        self._task = bus.tasks.spawn(self._run(), name=f"memory-sub:{subject}")

    def put(self, delivery: Delivery) -> None:
        self._inbox.put_nowait(delivery)

    async def _run(self) -> None:
        while True:
            delivery = await self._inbox.get()
            try:
                await self._handler(delivery)
            except Exception:
                log.exception("subscription handler failed", subject=self.subject)

    async def unsubscribe(self) -> None:
        self._bus.remove(self)
        self._task.cancel()


class MemoryBus:
    """``Bus`` in one process; several services' code can share one instance."""

    def __init__(self, name: str = "memory") -> None:
        self.tasks = TaskSet(f"bus.{name}")
        self._answering = TaskSet(f"bus.{name}.rpc")
        self._served: list[MemorySubscription] = []
        self.responder_wait = 0.0
        self.idempotent_attempt = IDEMPOTENT_ATTEMPT
        self._subs: list[MemorySubscription] = []
        self._replies: dict[str, asyncio.Future[Reply]] = {}
        self._ids = itertools.count(1)
        self._turn = itertools.count()
        self._closed = False
        self._stored: dict[str, int] = {}
        """msg_id -> sequence of what ``publish_durable`` stored (its de-duplication)."""
        self._sequence = 0

    @property
    def connected(self) -> bool:
        return not self._closed

    def remove(self, sub: MemorySubscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def _interest(self, subject: str) -> list[MemorySubscription]:
        return [s for s in self._subs if matches(s.subject, subject)]

    def _deliver(self, subject: str, data: bytes, headers: dict[str, str] | None, reply: str) -> None:
        if self._closed:
            raise BusError("the memory bus is closed")
        if subject in self._replies:
            if not self._replies[subject].done():
                self._replies[subject].set_result(Reply(data, headers))
            return
        groups: dict[str, list[MemorySubscription]] = {}
        for sub in self._interest(subject):
            if sub.queue:
                groups.setdefault(sub.queue, []).append(sub)
            else:
                sub.put(Delivery(subject, data, dict(headers or {}), reply))
        for members in groups.values():
            member = members[next(self._turn) % len(members)]
            member.put(Delivery(subject, data, dict(headers or {}), reply))

    async def publish(self, subject: str, payload: Payload, headers: dict[str, str] | None = None) -> None:
        self._deliver(subject, encode(payload), headers, "")

    async def publish_durable(
        self, subject: str, payload: Payload, *, msg_id: str = "", timeout: float = 5.0
    ) -> int:
        """Like a stream that stores every subject: a repeated ``msg_id`` is stored once (its first
        sequence is returned). As on NATS, plain subscribers see every publish, repeats too. No
        consumers, acks or replay: code that needs those takes a NatsBus."""
        headers = {MSG_ID_HEADER: msg_id} if msg_id else None
        self._deliver(subject, encode(payload), headers, "")
        if msg_id and msg_id in self._stored:
            return self._stored[msg_id]
        self._sequence += 1
        if msg_id:
            self._stored[msg_id] = self._sequence
        return self._sequence

    async def subscribe(self, subject: str, handler: Handler, *, queue: str = "") -> MemorySubscription:
        sub = MemorySubscription(self, subject, queue, handler)
        self._subs.append(sub)
        return sub

    async def request(
        self,
        subject: str,
        request: Payload,
        response_type: type[Resp],
        *,
        timeout: float = 5.0,
        responder_wait: float | None = None,
    ) -> Resp:
        wait = self.responder_wait if responder_wait is None else responder_wait
        shared = subjects.shared_responder(subject)
        return await self._request(subject, encode(request), response_type, timeout, wait if shared else 0.0)

    async def call(
        self,
        rpc: Rpc[Req, Resp],
        request: Req,
        *,
        topic: str = "",
        timeout: float = 5.0,
        responder_wait: float | None = None,
    ) -> Resp:
        async def ask(subject: str, data: bytes, timeout: float, wait: float) -> Resp:
            return await self._request(subject, data, rpc.response, timeout, wait)

        wait = self.responder_wait if responder_wait is None else responder_wait
        return await calling.call(
            rpc, request, topic=topic, timeout=timeout, wait=wait, attempt=self.idempotent_attempt, ask=ask
        )

    async def _request(
        self, subject: str, data: bytes, response_type: type[Resp], timeout: float, wait: float
    ) -> Resp:
        return await calling.until_responder(
            subject, wait, lambda: self._request_once(subject, data, response_type, timeout)
        )

    async def _request_once(
        self, subject: str, data: bytes, response_type: type[Resp], timeout: float
    ) -> Resp:
        if not self._interest(subject):
            raise NoResponders(f"no responder on {subject}")
        loop = asyncio.get_running_loop()
        inbox = f"{INBOX}{next(self._ids)}"
        future: asyncio.Future[Reply] = loop.create_future()
        self._replies[inbox] = future
        try:
            self._deliver(subject, data, None, inbox)
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            raise RpcTimeout(f"no answer on {subject} within {timeout}s") from exc
        finally:
            del self._replies[inbox]
        return read_reply(subject, reply.data, reply.headers, response_type)

    async def serve(
        self,
        rpc: Rpc[Req, Resp],
        handler: Callable[[Req], Awaitable[Resp]],
        *,
        topic: str = "",
        concurrent: bool = True,
    ) -> MemorySubscription:
        subject = rpc.subject(topic)

        async def respond(delivery: Delivery) -> None:
            reply = await answer(subject, rpc.request, delivery.data, handler)
            if delivery.reply and not self._closed:
                self._deliver(delivery.reply, reply.data, reply.headers, "")

        async def on_request(delivery: Delivery) -> None:
            if concurrent:
                self._answering.spawn(respond(delivery), name=f"rpc:{subject}")
            else:
                await respond(delivery)

        sub = await self.subscribe(subject, on_request, queue=rpc.queue_group(topic))
        self._served.append(sub)
        return sub

    async def stop_serving(self, timeout: float = STOP_SERVING_TIMEOUT) -> None:
        served, self._served = self._served, []
        for sub in served:
            self.remove(sub)  # no new requests; one already taken is still handled
        late = await self._answering.join(timeout)
        if late:
            log.warning("requests unanswered at stop", handlers=late, timeout=timeout)

    async def drain(self) -> None:
        await self.stop_serving()
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        self._subs.clear()
        await self._answering.aclose()
        await self.tasks.aclose()
