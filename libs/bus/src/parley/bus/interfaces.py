"""The bus seam: what services use, implemented by ``NatsBus`` (real) and ``MemoryBus`` (tests).

JetStream streams, consumers (``ensure_stream``, ``consume``) and KV (``key_value``) are not part
of ``Bus``: faking a stream's storage, acks and redelivery well enough to trust a test with it would
be a second JetStream. Code that needs them takes a ``NatsBus``. Only publishing to a stream is a
seam (``DurablePublisher``): ``MemoryBus`` keeps msg-id de-duplication and delivers to subscribers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from google.protobuf.message import Message

from parley.bus.contract import Req, Resp, Rpc
from parley.bus.delivery import Handler

Payload = Message | bytes


def encode(payload: Payload) -> bytes:
    """What goes on the wire for a message or raw bytes."""
    return payload if isinstance(payload, bytes) else payload.SerializeToString()


class Subscription(Protocol):
    """A live subscription or responder; ``unsubscribe`` is idempotent."""

    async def unsubscribe(self) -> None: ...


class Bus(Protocol):
    """Publish/subscribe, queue groups and request/reply with error codes."""

    responder_wait: float
    """Seconds a call to a shared RPC nobody serves keeps retrying before NoResponders."""
    idempotent_attempt: float
    """Seconds a shared idempotent call waits for an answer before asking again (``calling.py``)."""

    @property
    def connected(self) -> bool: ...

    async def publish(self, subject: str, payload: Payload, headers: dict[str, str] | None = None) -> None:
        """Fire and forget; nobody listening is not an error."""

    async def subscribe(self, subject: str, handler: Handler, *, queue: str = "") -> Subscription:
        """Messages of one subscription are handled one at a time, in order. ``*`` matches one
        token and ``>`` the rest; a queue group delivers each message to one of its members."""
        ...

    async def request(
        self,
        subject: str,
        request: Payload,
        response_type: type[Resp],
        *,
        timeout: float = 5.0,
        responder_wait: float | None = None,
    ) -> Resp:
        """A request on a raw subject (probes; prefer ``call``). Raises RpcError (the responder's
        code), RpcTimeout, NoResponders."""
        ...

    async def call(
        self,
        rpc: Rpc[Req, Resp],
        request: Req,
        *,
        topic: str = "",
        timeout: float = 5.0,
        responder_wait: float | None = None,
    ) -> Resp:
        """Call a declared RPC on ``rpc.subject(topic)``; errors as ``request``."""
        ...

    async def serve(
        self,
        rpc: Rpc[Req, Resp],
        handler: Callable[[Req], Awaitable[Resp]],
        *,
        topic: str = "",
        concurrent: bool = True,
    ) -> Subscription:
        """Answer a declared RPC in its queue group; an RpcError raised by ``handler`` is answered
        with its code, a request that does not decode with ``malformed``."""
        ...

    async def stop_serving(self, timeout: float = ...) -> None:
        """Take no new RPC requests; wait up to ``timeout`` for those in flight to be answered
        (a graceful stop: queue-group peers take the new ones)."""

    async def drain(self) -> None:
        """Finish in-flight RPC handlers (``stop_serving``), stop the rest, then close."""

    async def aclose(self) -> None: ...


class DurablePublisher(Protocol):
    """Publishes into a JetStream stream (room-state's outbox relay, dispatch's job events)."""

    async def publish_durable(
        self, subject: str, payload: Payload, *, msg_id: str = "", timeout: float = 5.0
    ) -> int:
        """Stored once per ``msg_id``; returns the stream sequence. Raises NoResponders when no
        stream stores ``subject``."""
        ...
