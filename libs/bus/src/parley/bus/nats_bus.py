"""NATS implementation of the bus (core NATS for RPC and signals, JetStream where loss matters)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
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

from parley.bus import subjects
from parley.bus.errors import BusError, ErrorCode, NoResponders, RpcError, RpcTimeout
from parley.observability.tasks import TaskSet, raise_if_cancelling

_log = logging.getLogger("parley.bus")

ERROR_CODE_HEADER = "Parley-Error-Code"
ERROR_MESSAGE_HEADER = "Parley-Error-Message"
MSG_ID_HEADER = "Nats-Msg-Id"

RESPONDER_RETRY_MIN = 0.05
RESPONDER_RETRY_MAX = 0.5
"""Pauses (doubling) between attempts while waiting for a responder to appear."""

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
Payload = Message | bytes


def _encode(payload: Payload) -> bytes:
    return payload if isinstance(payload, bytes) else payload.SerializeToString()


@dataclass(slots=True)
class Delivery:
    """One received message. For JetStream deliveries ``ack``/``nak`` settle it."""

    subject: str
    data: bytes
    headers: dict[str, str]
    reply: str
    _msg: Msg | None = field(default=None, repr=False)

    @property
    def num_delivered(self) -> int:
        if self._msg is None or not self._msg.reply:
            return 1
        return int(self._msg.metadata.num_delivered)

    @property
    def stream_sequence(self) -> int:
        if self._msg is None or not self._msg.reply:
            return 0
        return int(self._msg.metadata.sequence.stream)

    async def ack(self) -> None:
        if self._msg is not None:
            await self._msg.ack_sync()

    async def nak(self, delay: float | None = None) -> None:
        if self._msg is not None:
            await self._msg.nak(delay=delay)

    async def in_progress(self) -> None:
        if self._msg is not None:
            await self._msg.in_progress()

    async def term(self) -> None:
        if self._msg is not None:
            await self._msg.term()


Handler = Callable[[Delivery], Awaitable[None]]


class Subscription:
    """A live subscription; nats-py resubscribes it after a reconnect."""

    def __init__(self, sub: NatsSubscription) -> None:
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


class Bus:
    """Publish/subscribe, queue groups, RPC and JetStream over one NATS connection."""

    def __init__(self, nc: Client, name: str) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._name = name
        self._tasks = TaskSet(f"bus.{name}")
        self.responder_wait = 0.0
        """Seconds ``request`` keeps retrying a ``subjects.shared_responder`` subject that nobody
        serves (a service restarting) before raising NoResponders; 0 = raise at once."""

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    @property
    def client(self) -> Client:
        return self._nc

    # core NATS ---------------------------------------------------------------------------------

    async def publish(self, subject: str, payload: Payload, headers: dict[str, str] | None = None) -> None:
        await self._nc.publish(subject, _encode(payload), headers=headers)

    async def subscribe(self, subject: str, handler: Handler, *, queue: str = "") -> Subscription:
        """Messages of one subscription are handled one at a time, in order."""

        async def callback(msg: Msg) -> None:
            try:
                await handler(_delivery(msg))
            except Exception:
                _log.exception("handler for %s failed", subject)

        return Subscription(await self._nc.subscribe(subject, queue=queue, cb=callback))

    async def request(
        self,
        subject: str,
        request: Payload,
        response_type: type[Resp],
        *,
        timeout: float = 5.0,
        responder_wait: float | None = None,
    ) -> Resp:
        """Call a responder; raise RpcError with its code, RpcTimeout or NoResponders.

        ``responder_wait`` (default: the bus's) bounds how long a shared subject without a
        responder is retried; the answer itself then has ``timeout``.
        """
        wait = self.responder_wait if responder_wait is None else responder_wait
        data = _encode(request)
        deadline = asyncio.get_running_loop().time() + (wait if subjects.shared_responder(subject) else 0.0)
        pause = RESPONDER_RETRY_MIN
        while True:
            try:
                msg = await self._nc.request(subject, data, timeout=timeout)
                break
            except nats.errors.NoRespondersError as exc:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise NoResponders(f"no responder on {subject}") from exc
                await asyncio.sleep(min(pause, left))
                pause = min(pause * 2, RESPONDER_RETRY_MAX)
            except nats.errors.TimeoutError as exc:
                raise RpcTimeout(f"no answer on {subject} within {timeout}s") from exc
        headers = msg.headers or {}
        if code := headers.get(ERROR_CODE_HEADER):
            raise RpcError(code, headers.get(ERROR_MESSAGE_HEADER, ""))
        response = response_type()
        try:
            response.ParseFromString(msg.data)
        except DecodeError as exc:
            raise RpcError(ErrorCode.INTERNAL, f"malformed reply on {subject}") from exc
        return response

    async def serve(
        self,
        subject: str,
        request_type: type[Req],
        handler: Callable[[Req], Awaitable[Message]],
        *,
        queue: str = "",
        concurrent: bool = True,
    ) -> Subscription:
        """Answer requests on ``subject``. Raise RpcError in ``handler`` to answer with a code.

        With ``concurrent`` each request runs in its own owned task (order is not kept).
        """

        async def answer(msg: Msg) -> None:
            request = request_type()
            try:
                request.ParseFromString(msg.data)
            except DecodeError:
                await self._reply_error(msg, ErrorCode.MALFORMED, f"cannot decode {request_type.__name__}")
                return
            try:
                response = await handler(request)
            except RpcError as exc:
                await self._reply_error(msg, exc.code, exc.message)
                return
            except BusError as exc:
                await self._reply_error(msg, exc.code, str(exc))
                return
            except Exception as exc:
                _log.exception("rpc handler for %s failed", subject)
                await self._reply_error(msg, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
                return
            if msg.reply:
                await self._safe_publish(msg.reply, response.SerializeToString())

        async def callback(msg: Msg) -> None:
            if concurrent:
                self._tasks.spawn(answer(msg), name=f"rpc:{subject}")
            else:
                await answer(msg)

        return Subscription(await self._nc.subscribe(subject, queue=queue, cb=callback))

    async def _reply_error(self, msg: Msg, code: ErrorCode, message: str) -> None:
        if msg.reply:
            headers = {ERROR_CODE_HEADER: str(code), ERROR_MESSAGE_HEADER: message[:4000]}
            await self._safe_publish(msg.reply, b"", headers)

    async def _safe_publish(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            await self._nc.publish(subject, data, headers=headers)
        except Exception:
            _log.exception("cannot reply on %s", subject)

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
            ack = await self._js.publish(subject, _encode(payload), timeout=timeout, headers=headers)
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
                for msg in msgs:
                    delivery = _delivery(msg)
                    try:
                        await handler(delivery)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        _log.exception("consumer %s handler failed; redelivering", durable)
                        try:
                            await msg.nak(delay=1.0)
                        except Exception:
                            pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise_if_cancelling()
                if self._nc.is_closed:
                    return  # the bus was closed under us: nothing left to consume
                _log.warning("consumer %s interrupted (%s); retrying", durable, exc)
                if sub is not None and isinstance(exc, nats.js.errors.NotFoundError):
                    sub = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                if not self._nc.is_connected:
                    sub = None

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
        """Finish in-flight handlers, then close."""
        await self._tasks.aclose()
        if not self._nc.is_closed:
            try:
                await self._nc.drain()
            except Exception:
                await self._nc.close()

    async def aclose(self) -> None:
        await self._tasks.aclose()
        if not self._nc.is_closed:
            await self._nc.close()


async def connect(url: str, name: str, *, connect_timeout: float = 5.0) -> Bus:
    """Connect with endless reconnects; subscriptions come back after a server restart."""

    async def on_error(exc: Exception) -> None:
        _log.warning("nats error: %s", exc)

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
    return Bus(nc, name)
