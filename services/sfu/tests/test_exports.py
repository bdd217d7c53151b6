"""The public names of the media engine (``parley.sfu.media``) and of its session-layer face
(``parley.sfu.engine``): what the rest of the SFU, the benchmarks and the tests build on."""

from __future__ import annotations

import pytest

import parley.sfu.engine
import parley.sfu.media

pytestmark = pytest.mark.unit


def test_media_engine_public_names() -> None:
    assert sorted(parley.sfu.media.__all__) == [
        "DownTrack",
        "IceLink",
        "IceRestartError",
        "MediaContext",
        "MediaRates",
        "MediaStats",
        "RtpTap",
        "TapError",
        "UpTrack",
        "configure",
        "ice_link",
        "new_peer_connection",
        "offered_simulcast_layers",
        "pc_closing",
        "prepare_answer",
        "restart_ice",
    ]
    for name in parley.sfu.media.__all__:
        assert getattr(parley.sfu.media, name) is not None


def test_no_process_wide_engine_state_is_exported() -> None:
    """The counters and settings live in a ``MediaContext`` per node, not in module globals."""
    assert not hasattr(parley.sfu.media, "STATS")
    assert not hasattr(parley.sfu.media, "media_stats")


def test_session_layer_face() -> None:
    assert sorted(parley.sfu.engine.__all__) == [
        "DownTrack",
        "IceLink",
        "IceRestartError",
        "MediaContext",
        "PublishedMedia",
        "RtpTap",
        "SubscribedMedia",
        "TapError",
        "UpTrack",
        "configure",
        "ice_link",
        "media_rates",
        "new_peer_connection",
        "pc_closing",
        "prepare_answer",
        "restart_ice",
    ]
    for name in parley.sfu.engine.__all__:
        assert getattr(parley.sfu.engine, name) is not None
