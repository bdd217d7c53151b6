"""A single-layer stream: every packet passes unless the limit is ``NO_LAYER``."""

from __future__ import annotations

from parley.sfu.media.interfaces import MAX_SPATIAL, NO_LAYER
from parley.sfu.media.layers import Layer
from parley.sfu.media.videolayerselector.interfaces import Decision


class NullSelector:
    __slots__ = ("_current", "_limit")

    def __init__(self) -> None:
        self._current: Layer | None = None
        self._limit = MAX_SPATIAL

    @property
    def current(self) -> Layer | None:
        return self._current

    @property
    def target(self) -> Layer | None:
        return self._current

    def set_limit(self, max_spatial: int) -> None:
        self._limit = max_spatial
        if max_spatial == NO_LAYER:
            self._current = None

    def select(self, layer: Layer, keyframe: bool, now: float) -> Decision:
        if self._limit == NO_LAYER:
            return Decision.DROP
        if layer is self._current:
            return Decision.FORWARD
        self._current = layer
        return Decision.SWITCH
