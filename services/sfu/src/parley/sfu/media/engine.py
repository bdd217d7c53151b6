"""Process-wide setup of aiortc for the SFU, and peer connection creation."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy

from parley.config import RtcConfig
from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media import ice_restart, settings

_configured: RtcConfig | None = None


def configure(rtc: RtcConfig) -> None:
    """Idempotent: host addresses, ICE port range, router, codec and negotiation patches, and the
    publisher bandwidth-estimate bounds ``rtc.bwe_*_bitrate`` (media-contract.md)."""
    global _configured
    settings.install(rtc)
    settings.install_bwe(settings.bwe_from_config(rtc))
    if rtc.node_ip:
        internals.set_host_addresses([rtc.node_ip, *rtc.extra_host_addresses])
    elif rtc.use_loopback:
        internals.set_host_addresses(["127.0.0.1", *rtc.extra_host_addresses])
    else:
        internals.set_host_addresses(None)
    internals.set_port_range(rtc.port_range_start, rtc.port_range_end)
    internals.patch_rtp_router()
    internals.extend_codecs()
    internals.patch_codec_negotiation()
    _configured = rtc


def configured() -> RtcConfig | None:
    return _configured


def new_peer_connection() -> RTCPeerConnection:
    """A peer connection for the SFU: no STUN servers, everything bundled on one transport, ICE
    restarts handled (``ice_restart.py``)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    ice_restart.install(pc)
    return pc
