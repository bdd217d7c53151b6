"""The layer selector seam."""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from parley.sfu.media.layers import Layer


class Decision(IntEnum):
    DROP = 0
    FORWARD = 1
    SWITCH = 2
    """Forward, and this packet starts a new segment (a layer switch or a resume): munge accordingly."""


class LayerSelector(Protocol):
    @property
    def current(self) -> Layer | None:
        """The layer being forwarded (None before the first packet, or while paused)."""

    @property
    def target(self) -> Layer | None:
        """The layer the selector is moving to (equal to ``current`` when settled)."""

    def set_limit(self, max_spatial: int) -> None:
        """The highest spatial layer allowed (``NO_LAYER``: forward nothing)."""

    def select(self, layer: Layer, keyframe: bool, now: float) -> Decision:
        """Synchronous, per packet."""
