"""Everything the media engine keeps per SFU node, in one object passed to what needs it.

A :class:`MediaContext` holds the ``rtc`` settings in force, the publisher bandwidth-estimate and
subscriber congestion knobs, the counters (``MediaStats``, read by NodeStats and ``/metrics``), the
media-path error accounting, the per-transport registry (publisher feedback and subscriber congestion
of each DTLS transport), the output streams of subscriber senders, and the ICE network scope (UDP
port allocator and host addresses). ``configure()`` (``engine.py``) creates one per node;
``UpTrack`` and ``DownTrack`` take it as ``context=`` and ``new_peer_connection(context)`` gathers
with its ports and addresses, so two nodes live in one process with nothing shared, and a track can
be built in isolation with its own context.

What stays process-wide is aiortc/aioice patching (``aiortc_internals``): the codec lists, the RTP
router, and the default host addresses and port range of peer connections created without a context
(the last ``configure()`` sets those).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley.config import RtcConfig
from parley.sfu.media.aiortc_internals import NetworkScope, PortAllocator
from parley.sfu.media.congestion.config import CongestionConfig
from parley.sfu.media.guard import ErrorGuard
from parley.sfu.media.out_stream import OutStreams
from parley.sfu.media.settings import BweSettings, bwe_from_config
from parley.sfu.media.stats import MediaStats
from parley.sfu.media.transports import TransportRegistry


@dataclass(eq=False, slots=True)
class MediaContext:
    """One node's media engine state. ``MediaContext()`` gives the defaults (unit tests);
    :meth:`from_config` follows an ``rtc`` config section."""

    rtc: RtcConfig = field(default_factory=RtcConfig)
    """The ``rtc`` section (packet cache size, ports, addresses)."""
    bwe: BweSettings = field(default_factory=BweSettings)
    """The REMB estimate sent to publishers (used by feedback created from now on)."""
    congestion: CongestionConfig = field(default_factory=CongestionConfig)
    """Subscriber congestion control (used by controllers created from now on)."""
    stats: MediaStats = field(default_factory=MediaStats)
    transports: TransportRegistry = field(default_factory=TransportRegistry)
    out_streams: OutStreams = field(default_factory=OutStreams)
    network: NetworkScope | None = None
    """ICE host sockets of this context's peer connections (None: the process default)."""
    cached_send_path: bool = False
    """Down tracks send through the cached per-transport ``SendPath`` (``send_path.py``) instead of
    the reference ``send_rtp_sync`` (``sfu.cached_send_path``; off by default: see the SFU README)."""
    errors: ErrorGuard = field(init=False)
    """Counts media-path exceptions into ``stats.errors`` and rate-limits their logs."""

    def __post_init__(self) -> None:
        self.errors = ErrorGuard(self.stats)

    @classmethod
    def from_config(cls, rtc: RtcConfig, congestion: CongestionConfig | None = None) -> MediaContext:
        """A context for ``rtc``: its packet cache size and its ``bwe_*_bitrate`` bounds (raises
        ``MediaConfigError`` if they contradict each other)."""
        return cls(
            rtc=rtc,
            bwe=bwe_from_config(rtc),
            congestion=congestion or CongestionConfig(),
            network=NetworkScope(
                PortAllocator(rtc.port_range_start, rtc.port_range_end), host_addresses(rtc)
            ),
        )

    @property
    def packet_cache_size(self) -> int:
        return self.rtc.packet_cache_size


def host_addresses(rtc: RtcConfig) -> list[str] | None:
    """The ICE host addresses of ``rtc`` (``node_ip``, or loopback, plus ``extra_host_addresses``);
    None: every interface (aioice's discovery)."""
    if rtc.node_ip:
        return [rtc.node_ip, *rtc.extra_host_addresses]
    if rtc.use_loopback:
        return ["127.0.0.1", *rtc.extra_host_addresses]
    return None
