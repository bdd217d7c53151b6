"""UpdateTrackSettings -> a down track's requested layer (LiveKit's rules)."""

from __future__ import annotations

import pytest
from livekit.protocol import models, rtc

from parley.sfu import track_settings
from parley.sfu.media.interfaces import MAX_SPATIAL, NO_LAYER

pytestmark = pytest.mark.unit


def _video(
    layers: list[tuple[int, int, int]] | None = None, size: tuple[int, int] = (1280, 720)
) -> models.TrackInfo:
    info = models.TrackInfo(sid="TR_v", type=models.TrackType.VIDEO, width=size[0], height=size[1])
    for quality, w, h in layers or []:
        info.layers.add(quality=quality, width=w, height=h)  # type: ignore[arg-type]
    return info


SIMULCAST = [(0, 320, 180), (1, 640, 360), (2, 1280, 720)]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def set_requested(self, max_spatial: int, pixels: int = 0) -> None:
        self.calls.append((max_spatial, pixels))


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (160, 90, 0),
        (320, 180, 0),
        (321, 181, 1),
        (640, 360, 1),
        (800, 450, 2),
        (1920, 1080, 2),
        (360, 640, 1),
    ],
)
def test_the_smallest_layer_that_covers_the_view(width: int, height: int, expected: int) -> None:
    assert track_settings.spatial_for_size(_video(SIMULCAST), width, height) == expected


def test_default_layer_sizes_without_described_layers() -> None:
    assert track_settings.spatial_for_size(_video(), 300, 170) == 0
    assert track_settings.spatial_for_size(_video(), 600, 340) == 1
    assert track_settings.spatial_for_size(_video(), 1000, 600) == 2
    assert (
        track_settings.spatial_for_size(models.TrackInfo(type=models.TrackType.VIDEO), 10, 10) == MAX_SPATIAL
    )


def test_quality_disabled_and_size_precedence() -> None:
    info = _video(SIMULCAST)
    limit = track_settings.requested_limit
    assert limit(info, None) == MAX_SPATIAL
    assert limit(info, rtc.UpdateTrackSettings(quality=models.VideoQuality.LOW)) == 0
    assert limit(info, rtc.UpdateTrackSettings(quality=models.VideoQuality.MEDIUM)) == 1
    assert limit(info, rtc.UpdateTrackSettings(quality=models.VideoQuality.OFF)) == NO_LAYER
    assert limit(info, rtc.UpdateTrackSettings(disabled=True, quality=models.VideoQuality.HIGH)) == NO_LAYER
    sized = rtc.UpdateTrackSettings(quality=models.VideoQuality.HIGH, width=320, height=180)
    assert limit(info, sized) == 0  # width/height win over quality (livekit-client sends both)
    audio = models.TrackInfo(type=models.TrackType.AUDIO)
    assert limit(audio, rtc.UpdateTrackSettings(quality=models.VideoQuality.LOW)) == MAX_SPATIAL


def test_remember_keeps_one_setting_per_track_and_apply_sets_the_limit() -> None:
    stored: dict[str, rtc.UpdateTrackSettings] = {}
    request = rtc.UpdateTrackSettings(track_sids=["TR_a", "TR_b"], width=640, height=360)
    assert list(track_settings.remember(stored, request)) == ["TR_a", "TR_b"]
    assert set(stored) == {"TR_a", "TR_b"} and not stored["TR_a"].track_sids
    down = Recorder()
    assert track_settings.apply(down, _video(SIMULCAST), stored["TR_a"]) == 1
    assert down.calls == [(1, 640 * 360)]
