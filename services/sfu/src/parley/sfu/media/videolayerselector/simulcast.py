"""Simulcast: one SSRC per spatial layer; forward one of them, switch on the target's keyframe.

The target is the highest active layer at or below the limit (the subscriber's request capped by
its stream allocator), or the lowest active layer when all of them are above the limit (a subscriber
that asks for LOW of a track sent only in HIGH still gets it, as LiveKit does). While the target
differs from the current layer the current one keeps flowing and a keyframe of the target is
requested (throttled by the source); the switch happens on that keyframe, so the picture never
breaks. The target is re-evaluated at most every ``RETARGET_EVERY_S`` on the packet path (layers
stop as the publisher adapts), and at once when the limit changes or a layer appears.
"""

from __future__ import annotations

from parley.sfu.media.interfaces import MAX_SPATIAL, NO_LAYER, TrackSource
from parley.sfu.media.layers import Layer
from parley.sfu.media.videolayerselector.interfaces import Decision

RETARGET_EVERY_S = 0.2


def choose_layer(layers: list[Layer], limit: int) -> Layer | None:
    """The highest of ``layers`` (lowest first) at or below ``limit``, else the lowest."""
    if limit == NO_LAYER or not layers:
        return None
    chosen = layers[0]
    for layer in layers:
        if layer.rank <= limit:
            chosen = layer
    return chosen


class SimulcastSelector:
    __slots__ = ("_current", "_generation", "_limit", "_source", "_target", "_target_at")

    def __init__(self, source: TrackSource) -> None:
        self._source = source
        self._current: Layer | None = None
        self._target: Layer | None = None
        self._target_at = float("-inf")
        self._generation = -1
        self._limit = MAX_SPATIAL

    @property
    def current(self) -> Layer | None:
        return self._current

    @property
    def target(self) -> Layer | None:
        return self._target

    @property
    def limit(self) -> int:
        return self._limit

    def set_limit(self, max_spatial: int) -> None:
        if max_spatial == self._limit:
            return
        self._limit = max_spatial
        self._target_at = float("-inf")
        if max_spatial == NO_LAYER:
            self._current = self._target = None

    def select(self, layer: Layer, keyframe: bool, now: float) -> Decision:
        if self._limit == NO_LAYER:
            return Decision.DROP
        if now - self._target_at >= RETARGET_EVERY_S or self._source.layer_generation != self._generation:
            self._retarget(now)
        target = self._target
        if layer is self._current:
            if target is not None and target is not layer:
                self._source.request_keyframe(target, now)  # throttled by the source
            return Decision.FORWARD
        if layer is not target:
            return Decision.DROP
        if not keyframe:
            self._source.request_keyframe(layer, now)
            return Decision.DROP
        self._current = layer
        return Decision.SWITCH

    def _retarget(self, now: float) -> None:
        self._target_at = now
        self._generation = self._source.layer_generation
        target = choose_layer(self._source.active_layers(now), self._limit)
        if target is not self._target:
            self._target = target
            if target is not None and target is not self._current:
                self._source.request_keyframe(target, now)
