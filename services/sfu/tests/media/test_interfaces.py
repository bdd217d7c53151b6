"""The media engine's classes and fakes implement the seams the session layer uses.

mypy --strict (``make lint``) checks the assignments below: an UpTrack is a PublishedMedia and a
TrackSource, a DownTrack a SubscribedMedia, a PacketSink and an Allocatable; the fakes satisfy the same
protocols, so session-layer tests exercise the real contract."""

from __future__ import annotations

import pytest

from parley.sfu.media import DownTrack, UpTrack
from parley.sfu.media.fakes import FakePublishedMedia, FakeSubscribedMedia
from parley.sfu.media.interfaces import (
    NO_LAYER,
    Allocatable,
    LinkStats,
    PacketSink,
    PublishedMedia,
    SubscribedMedia,
    TrackSource,
)

pytestmark = pytest.mark.unit


def as_published(up: UpTrack) -> tuple[PublishedMedia, TrackSource, LinkStats]:
    return up, up, up


def as_subscribed(down: DownTrack) -> tuple[SubscribedMedia, PacketSink, Allocatable, LinkStats]:
    return down, down, down, down


def test_fakes_follow_the_protocols() -> None:
    up: PublishedMedia = FakePublishedMedia("video", "TR_v", audio_level=0.25)
    down: SubscribedMedia = FakeSubscribedMedia(kind="video", track_sid="TR_v")
    assert (up.kind, up.track_sid, up.audio_level, up.link_report(0.0)) == ("video", "TR_v", 0.25, None)
    down.set_requested(NO_LAYER, 640 * 360)
    assert down.requested_max_spatial == NO_LAYER
    down.paused = True
    assert down.paused
    up.close()
    down.close()
