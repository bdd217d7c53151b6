"""The media engine as the session layer sees it (seams: ``media/interfaces.py``; notes: sfu README).

Everything comes from ``parley.sfu.media``; the session layer uses nothing else of it.
"""

from __future__ import annotations

from parley.sfu.media import (
    DownTrack,
    IceLink,
    IceRestartError,
    MediaContext,
    RtpTap,
    TapError,
    UpTrack,
    configure,
    ice_link,
    new_peer_connection,
    pc_closing,
    prepare_answer,
    restart_ice,
)
from parley.sfu.media.interfaces import PublishedMedia, SubscribedMedia

__all__ = [
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


def media_rates(context: MediaContext) -> tuple[float, float]:
    """(packets in/s, packets out/s) of ``context`` since the previous call."""
    rates = context.stats.rates()
    return float(rates.packets_in_per_s), float(rates.packets_out_per_s)
