"""A subscriber's adaptive-stream settings (``UpdateTrackSettings``) -> its down tracks' layer limit.

LiveKit's rules: ``disabled`` stops forwarding (no stream-state change: it is the subscriber's own
choice); otherwise a non-zero ``width``/``height`` picks the smallest layer that covers that view
(livekit-client's adaptive stream sends the element's size), else ``quality`` (``set_video_quality``
in the SDKs). Layer sizes come from the publisher's ``TrackInfo.layers`` (its ``AddTrackRequest``),
else LiveKit's defaults (180p, 360p, the track's size). ``fps`` is kept but not applied: temporal
layer selection is not implemented.

Settings are kept per (subscriber, track sid) even before the subscription exists, so a down track
created later starts with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from livekit.protocol import models, rtc

from parley.sfu.media.interfaces import MAX_SPATIAL, NO_LAYER

DEFAULT_SIZES = ((320, 180), (640, 360))
"""LOW and MEDIUM when the publisher described no layers (LiveKit's defaults; HIGH = the track)."""


class Limited(Protocol):
    """A down track as this module sees it."""

    def set_requested(self, max_spatial: int, pixels: int = 0) -> None: ...


def layer_sizes(info: models.TrackInfo) -> list[tuple[int, int, int]]:
    """(spatial layer, width, height) of the track's layers, lowest first."""
    described = sorted(
        (int(layer.quality), layer.width, layer.height)
        for layer in info.layers
        if layer.width and layer.height and layer.quality <= MAX_SPATIAL
    )
    if described:
        return described
    if info.width and info.height:
        low, medium = DEFAULT_SIZES
        return [(0, *low), (1, *medium), (MAX_SPATIAL, info.width, info.height)]
    return []


def spatial_for_size(info: models.TrackInfo, width: int, height: int) -> int:
    """The smallest layer whose shorter side covers the view's shorter side (rotation-proof)."""
    sizes = layer_sizes(info)
    if not sizes:
        return MAX_SPATIAL
    wanted = min(width, height)
    for spatial, w, h in sizes:
        if min(w, h) >= wanted:
            return spatial
    return sizes[-1][0]


def requested_limit(info: models.TrackInfo | None, settings: rtc.UpdateTrackSettings | None) -> int:
    """The layer limit for a subscriber's settings (no settings: the top layer)."""
    if settings is None:
        return MAX_SPATIAL
    if settings.disabled:
        return NO_LAYER
    if info is not None and info.type == models.TrackType.AUDIO:
        return MAX_SPATIAL
    if settings.width and settings.height and info is not None:
        return spatial_for_size(info, settings.width, settings.height)
    return (
        min(int(settings.quality), MAX_SPATIAL) if settings.quality != models.VideoQuality.OFF else NO_LAYER
    )


def apply(down: Limited, info: models.TrackInfo | None, settings: rtc.UpdateTrackSettings | None) -> int:
    """Set ``down``'s requested limit from ``settings``; returns the limit."""
    limit = requested_limit(info, settings)
    pixels = settings.width * settings.height if settings is not None else 0
    down.set_requested(limit, pixels)
    return limit


def remember(stored: dict[str, rtc.UpdateTrackSettings], request: rtc.UpdateTrackSettings) -> Iterable[str]:
    """Store ``request`` for each of its track sids; returns those sids."""
    for sid in request.track_sids:
        one = rtc.UpdateTrackSettings()
        one.CopyFrom(request)
        del one.track_sids[:]
        stored[sid] = one
    return list(request.track_sids)
