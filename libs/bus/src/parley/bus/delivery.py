"""One received message, whichever bus delivered it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.msg import Msg


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
