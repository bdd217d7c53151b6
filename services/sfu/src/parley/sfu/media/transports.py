"""Per-transport state of one media context: the publisher feedback (REMB) and the subscriber
congestion controller of each (bundled) DTLS transport.

One registry for both, owned by the ``MediaContext``: keyed by the transport object's identity (an
entry holds the transport itself, so a recycled ``id()`` never aliases) and emptied when the last
up/down track of a transport leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parley.sfu.media.congestion.subscriber import SubscriberCongestion
    from parley.sfu.media.publisher_feedback import PublisherFeedback


class TransportState:
    """What the engine keeps for one transport."""

    __slots__ = ("congestion", "feedback", "transport")

    def __init__(self, transport: object) -> None:
        self.transport = transport
        self.feedback: PublisherFeedback | None = None
        self.congestion: SubscriberCongestion | None = None


class TransportRegistry:
    """transport -> :class:`TransportState`, while any up or down track uses the transport."""

    __slots__ = ("_states",)

    def __init__(self) -> None:
        self._states: dict[int, TransportState] = {}

    def get(self, transport: object) -> TransportState | None:
        state = self._states.get(id(transport))
        return state if state is not None and state.transport is transport else None

    def state(self, transport: object) -> TransportState:
        """The transport's entry, created if missing (or if a dead transport's id was recycled)."""
        state = self.get(transport)
        if state is None:
            state = self._states[id(transport)] = TransportState(transport)
        return state

    def discard_if_unused(self, transport: object) -> None:
        state = self.get(transport)
        if state is not None and state.feedback is None and state.congestion is None:
            del self._states[id(transport)]

    def feedbacks(self) -> Iterator[PublisherFeedback]:
        for state in list(self._states.values()):
            if state.feedback is not None:
                yield state.feedback

    def congestions(self) -> Iterator[SubscriberCongestion]:
        for state in list(self._states.values()):
            if state.congestion is not None:
                yield state.congestion

    def __len__(self) -> int:
        return len(self._states)
