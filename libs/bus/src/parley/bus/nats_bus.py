"""NATS implementation of the bus (core NATS for RPC and signals, JetStream where loss matters)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from google.protobuf.message import Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as _NatsSub
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.kv import KeyValue

from parley.bus import calling, subjects
from parley.bus.calling import IDEMPOTENT_ATTEMPT
from parley.bus.contract import Rpc
from parley.bus.delivery import Delivery, Handler
from parley.bus.errors import BusError, NoResponders, RpcTimeout
from parley.bus.interfaces import Payload, encode
from parley.bus.responder import STOP_SERVING_TIMEOUT, Reply, answer, read_reply
from parley.observability import get_logger
from parley.observability.tasks import TaskSet, raise_if_cancelling

_log = get_logger("parley.bus")

MSG_ID_HEADER = "Nats-Msg-Id"


Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


class NatsSubscription:
    """A live subscription; nats-py resubscribes it after a reconnect."""

    def __init__(self, sub: _NatsSub) -> None:
        self._sub = sub

    async def unsubscribe(self) -> None:
        try:
            await self._sub.unsubscribe()
        except (nats.errors.ConnectionClosedError, nats.errors.BadSubscriptionError):
            pass


def _delivery(msg: Msg) -> Delivery:
    return Delivery(
        subject=msg.subject, data=msg.data, headers=dict(msg.headers or {}), reply=msg.reply, _msg=msg
    )


class NatsBus:
    """Publish/subscribe, queue groups, RPC and JetStream over one NATS connection."""

    def __init__(self, nc: Client, name: str) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._name = name
        self._tasks = TaskSet(f"bus.{name}")
        self._answering = TaskSet(f"bus.{name}.rpc")
        """Handlers of RPC requests in flight (``serve`` with ``concurrent``)."""
        self._served: list[_NatsSub] = []
        self.responder_wait = 0.0
        """Seconds ``request`` keeps retrying a ``subjects.shared_responder`` subject that nobody
        serves (a service restarting) before raising NoResponders; 0 = raise at once."""
        self.idempotent_attempt = IDEMPOTENT_ATTEMPT
        """Seconds each attempt of an idempotent shared call waits (``Rpc.idempotent``)."""

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    @property
    def client(self) -> Client:
        return self._nc

    # core NATS ---------------------------------------------------------------------------------

    async def publish(self, subject: str, payload: Payload, headers: dict[str, str] | None = None) -> None:
        await self._nc.publish(subject, encode(payload), headers=headers)

    async def subscribe(self, subject: str, handler: Handler, *, queue: str = "") -> NatsSubscription:
        """Messages of one subscription are handled one at a time, in order."""

        async def callback(msg: Msg) -> None:
            try:
                await handler(_delivery(msg))
            except Exception:
                _log.exception("subscription handler failed", subject=subject)

        return NatsSubscription(await self._nc.subscribe(subject, queue=queue, cb=callback))

    async def request(
        self,
        subject: str,
        request: Payload,
        response_type: type[Resp],
        *,
        timeout: float = 5.0,
        responder_wait: float | None = None,
    ) -> Resp:
        """Call a responder on a raw subject; raise RpcError with its code, RpcTimeout or
        NoResponders. Prefer ``call`` with a declaration from ``rpcs``.

        ``responder_wait`` (default: the bus's) bounds how long a shared subject without a
        responder is retried; the answer itself then has ``timeout``.
        """
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
        """Call ``rpc`` (on ``rpc.subject(topic)``); errors as ``request``. A shared RPC without a
        responder is retried for ``responder_wait`` (default: the bus's). A shared idempotent RPC
        unanswered within ``idempotent_attempt`` is asked again until ``timeout`` (an instance that
        took the request may have died: NATS never tells)."""

        async def ask(subject: str, data: bytes, timeout: float, wait: float) -> Resp:
            return await self._request(subject, data, rpc.response, timeout, wait)

        wait = self.responder_wait if responder_wait is None else responder_wait
        return await calling.call(
            rpc, request, topic=topic, timeout=timeout, wait=wait, attempt=self.idempotent_attempt, ask=ask
        )

    async def _request(
        self, subject: str, data: bytes, response_type: type[Resp], timeout: float, wait: float
    ) -> Resp:
        async def once() -> Resp:
            try:
                msg = await self._nc.request(subject, data, timeout=timeout)
            except nats.errors.NoRespondersError as exc:
                raise NoResponders(f"no responder on {subject}") from exc
            except nats.errors.TimeoutError as exc:
                raise RpcTimeout(f"no answer on {subject} within {timeout}s") from exc
            return read_reply(subject, msg.data, msg.headers, response_type)

        return await calling.until_responder(subject, wait, once)

    async def serve(
        self,
        rpc: Rpc[Req, Resp],
        handler: Callable[[Req], Awaitable[Resp]],
        *,
        topic: str = "",
        concurrent: bool = True,
    ) -> NatsSubscription:
        """Answer ``rpc`` on ``rpc.subject(topic)`` in its queue group. Raise RpcError in
        ``handler`` to answer with a code. With ``concurrent`` each request runs in its own
        owned task (order is not kept)."""
        subject = rpc.subject(topic)

        async def respond(msg: Msg) -> None:
            reply = await answer(subject, rpc.request, msg.data, handler)
            if msg.reply:
                await self._safe_publish(msg.reply, reply)

        async def callback(msg: Msg) -> None:
            if concurrent:
                self._answering.spawn(respond(msg), name=f"rpc:{subject}")
            else:
                await respond(msg)

        sub = await self._nc.subscribe(subject, queue=rpc.queue_group(topic), cb=callback)
        self._served.append(sub)
        return NatsSubscription(sub)

    async def stop_serving(self, timeout: float = STOP_SERVING_TIMEOUT) -> None:
        """Take no new RPC requests and let the ones in flight finish (up to ``timeout``), so a
        graceful stop answers every request it took; queue-group peers take the new ones."""
        served, self._served = self._served, []
        for sub in served:
            try:
                await sub.drain()  # type: ignore[no-untyped-call]  # delivered requests still handled
            except Exception:
                pass
        late = await self._answering.join(timeout)
        if late:
            _log.warning("requests unanswered at stop", handlers=late, timeout=timeout)

    async def _safe_publish(self, subject: str, reply: Reply) -> None:
        try:
            await self._nc.publish(subject, reply.data, headers=reply.headers)
        except Exception:
            _log.exception("cannot reply", subject=subject)

    # JetStream ---------------------------------------------------------------------------------

    async def ensure_stream(
        self,
        name: str,
        subjects: list[str],
        *,
        max_age: float = 7 * 86400,
        replicas: int = 1,
        duplicate_window: float = 120.0,
        memory: bool = False,
    ) -> None:
        """Create the stream, or update it to these settings; safe to call from every instance."""
        config = StreamConfig(
            name=name,
            subjects=subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.MEMORY if memory else StorageType.FILE,
            max_age=max_age,
            num_replicas=replicas,
            duplicate_window=duplicate_window,
        )
        try:
            await self._js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await self._js.update_stream(config)

    async def publish_durable(
        self, subject: str, payload: Payload, *, msg_id: str = "", timeout: float = 5.0
    ) -> int:
        """Publish to JetStream and wait for the store's ack; ``msg_id`` de-duplicates retries."""
        headers = {MSG_ID_HEADER: msg_id} if msg_id else None
        try:
            ack = await self._js.publish(subject, encode(payload), timeout=timeout, headers=headers)
        except nats.errors.NoRespondersError as exc:
            raise NoResponders(f"no stream stores {subject}") from exc
        except nats.errors.TimeoutError as exc:
            raise RpcTimeout(f"jetstream publish on {subject} timed out") from exc
        return int(ack.seq)

    def consume(
        self,
        stream: str,
        durable: str,
        handler: Handler,
        *,
        filter_subject: str = "",
        ack_wait: float = 30.0,
        max_ack_pending: int = 1000,
        batch: int = 64,
        deliver_new: bool = False,
    ) -> asyncio.Task[None]:
        """Run a durable pull consumer in an owned task until the bus closes.

        The handler must ack/nak each delivery; an exception naks it. The loop survives
        server restarts: it retries until the consumer is back and resumes where acked.
        """
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            max_ack_pending=max_ack_pending,
            filter_subject=filter_subject or None,
            deliver_policy=DeliverPolicy.NEW if deliver_new else DeliverPolicy.ALL,
        )
        return self._tasks.spawn(
            self._consume_loop(stream, durable, config, handler, batch), name=f"consume:{durable}"
        )

    async def _consume_loop(
        self, stream: str, durable: str, config: ConsumerConfig, handler: Handler, batch: int
    ) -> None:
        sub: JetStreamContext.PullSubscription | None = None
        try:
            backoff = 0.1
            while True:
                try:
                    if sub is None:
                        try:
                            await self._js.add_consumer(stream, config)
                        except nats.js.errors.BadRequestError:
                            pass  # exists with other settings: bind to it as it is
                        sub = await self._js.pull_subscribe_bind(durable, stream=stream)
                    try:
                        msgs = await sub.fetch(batch, timeout=1.0)
                    except nats.errors.TimeoutError:
                        continue
                    backoff = 0.1
                    await _handle_batch(msgs, handler, durable)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    raise_if_cancelling()
                    if self._nc.is_closed:
                        return  # the bus was closed under us: nothing left to consume
                    _log.warning("consumer interrupted; retrying", consumer=durable, error=str(exc))
                    if sub is not None and isinstance(exc, nats.js.errors.NotFoundError):
                        await _forget(sub)
                        sub = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    if not self._nc.is_connected and sub is not None:
                        await _forget(sub)
                        sub = None
        finally:
            if sub is not None:
                await _forget(sub)

    async def key_value(self, bucket: str, *, history: int = 1, ttl: float | None = None) -> KeyValue:
        """A JetStream KV bucket, created if missing."""
        try:
            return await self._js.key_value(bucket)
        except (nats.js.errors.BucketNotFoundError, nats.js.errors.NotFoundError):
            from nats.js.api import KeyValueConfig

            return await self._js.create_key_value(KeyValueConfig(bucket=bucket, history=history, ttl=ttl))

    @property
    def jetstream(self) -> JetStreamContext:
        return self._js

    # lifecycle -----------------------------------------------------------------------------------

    async def drain(self) -> None:
        """Finish in-flight RPC handlers (``stop_serving``), stop the rest, then close."""
        await self.stop_serving()
        await self._answering.aclose()
        await self._tasks.aclose()
        if not self._nc.is_closed:
            try:
                await self._nc.drain()
            except Exception:
                await self._nc.close()

    async def aclose(self) -> None:
        await self._answering.aclose()
        await self._tasks.aclose()
        if not self._nc.is_closed:
            await self._nc.close()


async def _handle_batch(msgs: list[Msg], handler: Handler, durable: str) -> None:
    """Each fetched message to ``handler`` in order; one that raises is redelivered after 1 s."""
    for msg in msgs:
        try:
            await handler(_delivery(msg))
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("consumer handler failed; redelivering", consumer=durable)
            try:
                await msg.nak(delay=1.0)
            except Exception:
                pass


async def _forget(sub: JetStreamContext.PullSubscription) -> None:
    """Unsubscribe a pull subscription that is no longer read: left registered, a message still
    queued in it holds the connection's drain (a graceful stop) until nats-py's drain timeout."""
    try:
        await sub.unsubscribe()
    except Exception:
        pass


async def connect(url: str, name: str, *, connect_timeout: float = 5.0) -> NatsBus:
    """Connect with endless reconnects; subscriptions come back after a server restart."""

    async def on_error(exc: Exception) -> None:
        _log.warning("nats error", error=str(exc))

    async def on_disconnect() -> None:
        _log.warning("nats disconnected")

    async def on_reconnect() -> None:
        _log.info("nats reconnected")

    options: dict[str, Any] = {
        "servers": [u.strip() for u in url.split(",") if u.strip()],
        "name": name,
        "connect_timeout": connect_timeout,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.25,
        "allow_reconnect": True,
        "error_cb": on_error,
        "disconnected_cb": on_disconnect,
        "reconnected_cb": on_reconnect,
        "pending_size": 64 * 1024 * 1024,
    }
    try:
        # Endless reconnects apply to the first connection too: bound it so a service exits clearly.
        nc = await asyncio.wait_for(nats.connect(**options), timeout=connect_timeout * 2)
    except Exception as exc:
        raise BusError(f"cannot connect to NATS at {url}: {exc}") from exc
    return NatsBus(nc, name)
