"""Setup of aiortc for the SFU (process-wide patches), the node's media context, and peer connections."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy

from parley.config import RtcConfig
from parley.sfu.media import aiortc_internals as internals
from parley.sfu.media import ice_restart
from parley.sfu.media.context import MediaContext, host_addresses


def configure(rtc: RtcConfig) -> MediaContext:
    """A new media context for ``rtc`` (one per SFU node), after patching aiortc for it (idempotent):
    host addresses, ICE port range, router, codec and negotiation patches. The context carries the
    publisher bandwidth-estimate bounds ``rtc.bwe_*_bitrate`` (``media/settings.py``); the aiortc patches
    are process-wide (``context.py``)."""
    context = MediaContext.from_config(rtc)  # validates before anything is patched
    internals.set_host_addresses(host_addresses(rtc))
    internals.set_port_range(rtc.port_range_start, rtc.port_range_end)
    internals.patch_rtp_router()
    internals.extend_codecs()
    internals.patch_codec_negotiation()
    return context


def new_peer_connection(context: MediaContext | None = None) -> RTCPeerConnection:
    """A peer connection for the SFU: no STUN servers, everything bundled on one transport, ICE
    restarts handled (``ice_restart.py``); host candidates on ``context``'s port range and addresses
    (without a context: the process default of the last ``configure()``)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    ice_restart.install(pc)
    if context is not None and context.network is not None:
        internals.scope_peer_connection(pc, context.network)
    return pc


def pc_closing(pc: RTCPeerConnection) -> bool:
    """``pc`` is closing or closed (by us, or by aiortc once the client closed its DTLS transport),
    even while its public states still say otherwise."""
    return internals.pc_closing(pc)
