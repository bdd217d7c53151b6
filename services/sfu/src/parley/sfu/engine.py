"""The media engine as the session layer sees it (contract: notes/media-contract.md).

Everything comes from ``parley.sfu.media``. While that package has not landed yet, a minimal
fallback keeps signalling, data channels and negotiation usable (no media forwarding): it is
logged loudly at start and ``available`` is False.
"""

from __future__ import annotations

import importlib
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection

from parley.config import RtcConfig
from parley.observability import get_logger

log = get_logger("parley.sfu.engine")

try:
    _media: Any = importlib.import_module("parley.sfu.media")
    available = hasattr(_media, "UpTrack") and hasattr(_media, "DownTrack")
except ImportError:  # pragma: no cover - only before the engine lands
    _media = None
    available = False

UpTrack: Any = getattr(_media, "UpTrack", None)
DownTrack: Any = getattr(_media, "DownTrack", None)


def configure(rtc: RtcConfig) -> None:
    if available:
        _media.configure(rtc)
        return
    log.warning("media engine not available: signalling and data only, no media forwarding")
    if rtc.use_loopback:
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    elif rtc.node_ip:
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [rtc.node_ip]


def new_peer_connection() -> RTCPeerConnection:
    if available:
        pc: RTCPeerConnection = _media.new_peer_connection()
        return pc
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def prepare_answer(offer_sdp: str, answer_sdp: str) -> str:
    if available:
        result: str = _media.prepare_answer(offer_sdp, answer_sdp)
        return result
    return answer_sdp


def media_rates() -> tuple[float, float]:
    """(packets in/s, packets out/s) since the previous call."""
    try:
        stats = importlib.import_module("parley.sfu.media.stats")
    except ImportError:  # pragma: no cover
        return 0.0, 0.0
    rates = stats.STATS.rates()
    return float(rates.packets_in_per_s), float(rates.packets_out_per_s)
