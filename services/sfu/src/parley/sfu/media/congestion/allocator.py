"""Per-subscriber stream allocation: which spatial layer of each video track the link allows.

Priority: screen share first, then camera video by ``requested_pixels`` (biggest view first), ties by
track sid. A plan is made in two passes over the budget (estimate minus the audio reserve): first the
lowest layer of every track in priority order (a track whose lowest layer does not fit is paused,
``NO_LAYER``), then upgrades in priority order, each track to the highest layer whose extra cost still
fits. A track without layer measurements yet gets its requested layer (optimistic, costs nothing).

Hysteresis: a downgrade applies at once; an upgrade needs the plan made with ``budget / (1 + margin)``
to allow it continuously for ``upgrade_hold_s``. The first decision for a track applies at once.
``set_allocation`` is called only when a track's layer changes. Pure logic: time is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from parley.sfu.media.congestion.config import AllocatorConfig
from parley.sfu.media.interfaces import NO_LAYER, Allocatable, LayerBitrate


@dataclass(slots=True)
class _Track:
    allocated: int | None = None
    upgrade_since: float | None = None


@dataclass(frozen=True, slots=True)
class Allocation:
    """The outcome of one :meth:`StreamAllocator.allocate`."""

    layers: dict[str, int]
    """Track sid -> allocated spatial layer (``NO_LAYER``: paused)."""
    committed_bps: float
    """What the allocated layers cost (audio reserve included)."""
    deficient: list[str]
    """Tracks below what they asked for (and what the publisher sends), in priority order."""
    probe_goal_bps: float | None
    """The estimate that would lift the first deficient track one layer (with the upgrade margin);
    None when nothing is deficient or the estimate already covers it."""


def priority(tracks: Sequence[Allocatable]) -> list[Allocatable]:
    return sorted(tracks, key=lambda t: (not t.is_screen_share, -t.requested_pixels, t.track_sid))


def plan(options: Sequence[tuple[int, list[LayerBitrate]]], budget: float) -> list[int]:
    """Layers for ``options`` = (requested max layer, available layers lowest first), in priority
    order, within ``budget`` bit/s."""
    chosen = [NO_LAYER] * len(options)
    cost = [0] * len(options)
    remaining = budget
    for i, (requested, layers) in enumerate(options):
        if requested == NO_LAYER:
            continue
        if not layers:
            chosen[i] = requested
        elif layers[0].bps <= remaining:
            chosen[i], cost[i] = layers[0].spatial, layers[0].bps
            remaining -= layers[0].bps
    for i, (_, layers) in enumerate(options):
        if chosen[i] == NO_LAYER or not layers:
            continue
        for layer in reversed(layers):
            if layer.spatial <= chosen[i]:
                break
            if layer.bps - cost[i] <= remaining:
                remaining -= layer.bps - cost[i]
                chosen[i], cost[i] = layer.spatial, layer.bps
                break
    return chosen


class StreamAllocator:
    """Call :meth:`allocate` periodically and whenever tracks or requests change."""

    def __init__(self, config: AllocatorConfig | None = None) -> None:
        self.config = config or AllocatorConfig()
        self._tracks: dict[str, _Track] = {}

    def forget(self, track_sid: str) -> None:
        self._tracks.pop(track_sid, None)

    def allocate(
        self, tracks: Sequence[Allocatable], *, estimate_bps: float, audio_bps: float, now: float
    ) -> Allocation:
        ordered = priority(tracks)
        options = []
        for t in ordered:
            requested = t.requested_max_spatial
            options.append((requested, [b for b in t.layer_bitrates(now) if b.spatial <= requested]))
        budget = estimate_bps - audio_bps
        margin = 1 + self.config.upgrade_margin
        down = plan(options, budget)
        up = plan(options, budget / margin)
        layers: dict[str, int] = {}
        committed = float(audio_bps)
        deficient: list[str] = []
        first_gap: tuple[int, int] | None = None
        """(current cost, cost of the next layer) of the first deficient track."""
        for t, (requested, available), now_layer, up_layer in zip(ordered, options, down, up, strict=True):
            state = self._tracks.setdefault(t.track_sid, _Track())
            new = self._decide(state, now_layer, min(up_layer, now_layer), bool(available), now)
            if new != state.allocated:
                state.allocated = new
                t.set_allocation(new)
            layers[t.track_sid] = new
            cost = _cost(available, new)
            committed += cost
            wanted = available[-1].spatial if available else requested
            if requested != NO_LAYER and new < wanted:
                deficient.append(t.track_sid)
                if first_gap is None:
                    step = next(layer for layer in available if layer.spatial > new)
                    first_gap = (cost, step.bps)
        for sid in [sid for sid in self._tracks if sid not in layers]:
            del self._tracks[sid]
        probe_goal = None
        if first_gap is not None:
            goal = (committed - first_gap[0] + first_gap[1]) * margin
            probe_goal = goal if goal > estimate_bps else None
        return Allocation(layers, committed, deficient, probe_goal)

    def _decide(self, state: _Track, now_layer: int, up_layer: int, measured: bool, now: float) -> int:
        current = state.allocated
        if current is None or now_layer < current or (not measured and now_layer != current):
            state.upgrade_since = None
            return now_layer
        if up_layer > current:
            if state.upgrade_since is None:
                state.upgrade_since = now
            if now - state.upgrade_since >= self.config.upgrade_hold_s:
                state.upgrade_since = None
                return up_layer
            return current
        state.upgrade_since = None
        return current


def _cost(layers: list[LayerBitrate], spatial: int) -> int:
    return next((layer.bps for layer in layers if layer.spatial == spatial), 0)
