"""An :class:`~parley.sfu.media.interfaces.Allocatable` for tests and benchmarks: fixed layer costs,
records every ``set_allocation`` and ``send_padding``."""

from __future__ import annotations

from parley.sfu.media.interfaces import MAX_SPATIAL, LayerBitrate


class FakeAllocatable:
    def __init__(
        self,
        track_sid: str,
        bitrates: list[int] | None = None,
        *,
        screen_share: bool = False,
        pixels: int = 0,
        requested: int = MAX_SPATIAL,
    ) -> None:
        self.track_sid = track_sid
        self.bitrates = list(bitrates or [])
        """bit/s of layers 0, 1, ... (empty: not measured yet)."""
        self.is_screen_share = screen_share
        self.requested_pixels = pixels
        self.requested_max_spatial = requested
        self.allocations: list[int] = []
        self.padding: list[tuple[int, int]] = []
        self.can_pad = True

    @property
    def allocated(self) -> int | None:
        return self.allocations[-1] if self.allocations else None

    def layer_bitrates(self, now: float) -> list[LayerBitrate]:
        return [
            LayerBitrate(spatial, bps)
            for spatial, bps in enumerate(self.bitrates)
            if spatial <= self.requested_max_spatial
        ]

    def set_allocation(self, max_spatial: int) -> None:
        self.allocations.append(max_spatial)

    def send_padding(self, size: int, count: int) -> int:
        if not self.can_pad:
            return 0
        self.padding.append((size, count))
        return size * count
