"""The media engine as the session layer sees it (contract: notes/media-contract.md).

Everything comes from ``parley.sfu.media``; the session layer uses nothing else of it.
"""

from __future__ import annotations

from parley.sfu.media import (
    STATS,
    DownTrack,
    IceLink,
    IceRestartError,
    UpTrack,
    configure,
    ice_link,
    new_peer_connection,
    prepare_answer,
    restart_ice,
)
from parley.sfu.media.interfaces import PublishedMedia, SubscribedMedia

__all__ = [
    "DownTrack",
    "IceLink",
    "IceRestartError",
    "PublishedMedia",
    "SubscribedMedia",
    "UpTrack",
    "configure",
    "ice_link",
    "media_rates",
    "new_peer_connection",
    "prepare_answer",
    "restart_ice",
]


def media_rates() -> tuple[float, float]:
    """(packets in/s, packets out/s) since the previous call."""
    rates = STATS.rates()
    return float(rates.packets_in_per_s), float(rates.packets_out_per_s)
