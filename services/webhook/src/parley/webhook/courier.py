"""Delivers one partition's events to one endpoint: in order per room, acked only when delivered.

The courier pulls a batch from its durable consumer, groups it by room (batch order is stream
order), and delivers the rooms concurrently, each room's events one after the other. An event
is acked only after a 2xx answer, or after it expired (logged and counted). The next batch is
fetched only when the whole batch is settled, so JetStream never hands out a room's later event
while an earlier one is still open; while an event is being retried, every open event of the
batch is kept alive with ``in_progress``. Stopping (partition handed over) lets in-flight POSTs
finish, then naks whatever is still open so the next owner gets those first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from parley.bus import NatsBus
from parley.bus.subjects import room_from_token
from parley.observability import TaskSet, get_logger, log_fields, wait_event
from parley.observability.tasks import raise_if_cancelling
from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent
from parley.webhook import metrics, topology, wire
from parley.webhook.backoff import Backoff
from parley.webhook.endpoint import Endpoint
from parley.webhook.errors import DeliveryFailed

log = get_logger("parley.webhook.courier")


@dataclass(frozen=True, slots=True)
class CourierSettings:
    retention: float
    backoff: Backoff
    ack_wait: float
    batch: int
    backfill: float
    inactive_threshold: float
    stop_grace: float


class _Stopped(Exception):
    """The courier is stopping: leave the event open for the next owner."""


class Courier:
    def __init__(self, bus: NatsBus, endpoint: Endpoint, partition: int, settings: CourierSettings) -> None:
        self._bus = bus
        self._endpoint = endpoint
        self._partition = partition
        self._settings = settings
        self._durable = topology.durable_name(endpoint.id, partition)
        self._stopping = asyncio.Event()
        self._open: dict[int, Msg] = {}
        self._attrs = {"endpoint": endpoint.id}

    @property
    def durable(self) -> str:
        return self._durable

    def stop(self) -> None:
        """Ask to stop after in-flight POSTs; ``run`` then returns with nothing left open."""
        self._stopping.set()

    async def run(self) -> None:
        sub: JetStreamContext.PullSubscription | None = None
        pause = 0.1
        try:
            while not self._stopping.is_set():
                try:
                    if sub is None:
                        sub = await self._subscribe()
                    msgs = await self._fetch(sub)
                    pause = 0.1
                    if msgs:
                        await self._deliver_batch(msgs)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    raise_if_cancelling()
                    log.warning("consumer interrupted; retrying", consumer=self._durable, error=str(exc))
                    if sub is not None:
                        with contextlib.suppress(Exception):
                            await sub.unsubscribe()
                        sub = None
                    await wait_event(self._stopping, pause)
                    pause = min(pause * 2, 2.0)
        finally:
            metrics.forget_backlog(self._endpoint.id, self._partition)
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        s = self._settings
        await topology.ensure_consumer(
            self._bus,
            self._durable,
            self._partition,
            ack_wait=s.ack_wait,
            max_ack_pending=2 * s.batch,
            backfill=s.backfill,
            inactive_threshold=s.inactive_threshold,
        )
        return await self._bus.jetstream.pull_subscribe_bind(self._durable, stream=topology.STREAM)

    async def _fetch(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        """Long-poll for one event, then take whatever else is already waiting (no extra wait)."""
        try:
            msgs = list(await sub.fetch(1, timeout=1.0))
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        pending = int(msgs[-1].metadata.num_pending or 0)
        if pending and self._settings.batch > 1:
            with contextlib.suppress(nats.errors.TimeoutError, TimeoutError):
                msgs += await sub.fetch(min(self._settings.batch - 1, pending), timeout=1.0)
            pending = int(msgs[-1].metadata.num_pending or 0)
        metrics.set_backlog(self._endpoint.id, self._partition, pending)
        return msgs

    async def _deliver_batch(self, msgs: list[Msg]) -> None:
        rooms: dict[str, list[Msg]] = {}
        for msg in msgs:
            rooms.setdefault(topology.room_token_of(msg.subject), []).append(msg)
            self._open[id(msg)] = msg
        metrics.queued.add(len(msgs), self._attrs)
        tasks = TaskSet(f"courier.{self._durable}")
        keepalive = tasks.spawn(self._keep_alive(), name=f"{self._durable}.keepalive")
        try:
            await asyncio.gather(
                *(tasks.spawn(self._deliver_room(token, room_msgs)) for token, room_msgs in rooms.items())
            )
        finally:
            keepalive.cancel()
            await tasks.aclose()
            await self._nak_open()

    async def _deliver_room(self, token: str, msgs: list[Msg]) -> None:
        with log_fields(room=room_from_token(token)):
            for msg in msgs:
                try:
                    await self._settle(msg)
                except _Stopped:
                    return

    async def _settle(self, msg: Msg) -> None:
        event = RoomEvent()
        try:
            event.ParseFromString(msg.data)
        except DecodeError:
            log.error("undecodable room event; dropped", consumer=self._durable, subject=msg.subject)
            await self._finish(msg, term=True)
            return
        if not wire.is_webhook(event):
            metrics.skipped.add(1, self._attrs)
            await self._finish(msg)
            return
        encoded = wire.encode(event)
        created_ms = encoded.created_at_ms or int(msg.metadata.timestamp.timestamp() * 1000)
        deadline = created_ms / 1000 + self._settings.retention
        attempt = 0
        while True:
            if self._stopping.is_set():
                raise _Stopped
            if time.time() > deadline:
                metrics.expired.add(1, {**self._attrs, "event": encoded.event})
                log.error(
                    "webhook event expired undelivered",
                    event_id=encoded.id,
                    kind=encoded.event,
                    endpoint=self._endpoint.display,
                    attempts=attempt,
                    retention=self._settings.retention,
                )
                await self._finish(msg, term=True)
                return
            try:
                await self._endpoint.post(encoded)
                break
            except DeliveryFailed as exc:
                attempt += 1
                metrics.retried.add(1, self._attrs)
                delay = min(self._settings.backoff.delay(attempt), max(0.0, deadline - time.time()))
                if attempt == 1 or attempt % 10 == 0:
                    log.warning(
                        "webhook delivery failed; retrying",
                        event_id=encoded.id,
                        kind=encoded.event,
                        endpoint=self._endpoint.display,
                        attempt=attempt,
                        error=exc.reason,
                        retry_in=round(delay, 2),
                    )
                await wait_event(self._stopping, delay)
        await self._finish(msg)
        metrics.delivered.add(1, {**self._attrs, "event": encoded.event})
        metrics.latency.record(max(0.0, time.time() - created_ms / 1000), self._attrs)

    async def _finish(self, msg: Msg, *, term: bool = False) -> None:
        """Settle: the event leaves the open set before the ack, so a failed ack is not naked."""
        self._open.pop(id(msg), None)
        metrics.queued.add(-1, self._attrs)
        try:
            if term:
                await msg.term()
            else:
                await msg.ack_sync(timeout=max(1.0, self._settings.ack_wait / 2))
        except Exception as exc:  # redelivered later: a duplicate with the same id
            log.warning(
                "ack failed; the event may be delivered again", consumer=self._durable, error=str(exc)
            )

    async def _keep_alive(self) -> None:
        interval = self._settings.ack_wait / 3
        while True:
            await asyncio.sleep(interval)
            for msg in list(self._open.values()):
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def _nak_open(self) -> None:
        """Hand unsettled events back at once, oldest first, so the next fetch starts with them."""
        open_msgs = sorted(self._open.values(), key=lambda m: m.metadata.sequence.stream)
        self._open.clear()
        if open_msgs:
            metrics.queued.add(-len(open_msgs), self._attrs)
        for msg in open_msgs:
            with contextlib.suppress(Exception):
                await msg.nak()
