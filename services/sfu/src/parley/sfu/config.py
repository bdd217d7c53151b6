"""The SFU node's config: the shared sections plus ``sfu``."""

from __future__ import annotations

from pydantic import Field

from parley.config import ParleyConfig
from parley.config.sections import Section


class SfuSection(Section):
    stats_interval: float = Field(default=2.0, gt=0)
    """Seconds between NodeStats heartbeats on parley.nodes.sfu."""
    speaker_interval: float = Field(default=0.5, gt=0)
    """Seconds between speakers_changed evaluations."""
    speaker_threshold: float = Field(default=0.05, ge=0, le=1)
    """Audio level (0..1) above which a participant counts as speaking."""
    server_version: str = "1.9.0"
    """Semver reported to clients (>= 1.8.0, or JS/Rust RPC breaks)."""
    ice_servers_timeout: float = Field(default=0.3, gt=0)
    """Seconds to wait for turn-alloc's IceServers before joining without TURN."""
    cached_send_path: bool = False
    """Experimental: send RTP through the cached per-transport send path (SRTP protect in place,
    the selected ICE pair's socket; ~5 us less CPU per forwarded packet). Off by default: with it
    on, two browser tests lost a subscriber's media under heavy load (not yet explained)."""
    max_metadata_bytes: int = Field(default=512 * 1024, ge=0)
    max_attributes_bytes: int = Field(default=64 * 1024, ge=0)
    join_timeout: float = Field(default=60.0, gt=0)
    """Seconds a joined participant may take to connect media (become ACTIVE) before it is removed
    (LiveKit: participant_connection_aborted)."""
    capacity_packets_per_s: float = Field(default=40000.0, gt=0)
    """Forwarded packets per second that count as load 1.0."""
    capacity_participants: int = Field(default=500, gt=0)
    """Participants that count as load 1.0."""
    connection_quality_interval: float = Field(default=5.0, gt=0)
    """Seconds between connection-quality evaluations (connection_quality updates to clients)."""
    dynacast_pause_delay: float = Field(default=5.0, ge=0)
    """Seconds a simulcast layer nobody needs any more keeps being published before the publisher is
    told to pause it (subscribed_quality_update); a layer needed again is enabled at once."""
    drain_timeout: float = Field(default=60.0, ge=0)
    """On SIGTERM the node takes no new sessions and moves its rooms to other live nodes (their
    participants reconnect there); rooms that cannot move (no other node) may run this many seconds
    more before the node closes them. A second signal ends the drain at once."""
    resume_window: float = Field(default=15.0, ge=0)
    """Seconds a participant whose signalling connection closed without a leave stays in the room,
    media flowing, waiting for the client to resume (reconnect=1) through any edge; 0 disables
    resuming (clients are told to rejoin, and the participant leaves at once with SIGNAL_CLOSE)."""
    report_retry_max: float = Field(default=2.0, gt=0)
    """Longest pause, in seconds, between retries of a change report room-state did not take
    (room-state, Valkey or NATS down); reports are retried until they land, in order."""
    sessions_interval: float = Field(default=5.0, gt=0)
    """Seconds between reports of the sessions this node holds (room-state removes participants no
    node holds, see ``room_state.reconcile_grace``)."""
    edge_check_interval: float = Field(default=2.0, gt=0)
    """Seconds between liveness probes of the edges holding this node's signalling connections; an
    edge found gone twice in a row counts as a signalling close for each of its participants (they
    wait ``resume_window`` for a resume, then leave with SIGNAL_CLOSE)."""
    tap_bind_host: str = "127.0.0.1"
    """Address the RTP taps' UDP sockets bind to (port 0: one ephemeral port per tap). Egress workers
    on other hosts need an address they can reach (the private network's)."""
    tap_rtcp_timeout: float = Field(default=5.0, gt=0)
    """Seconds an RTP tap runs without RTCP from its receiver before it ends."""


class SfuConfig(ParleyConfig):
    sfu: SfuSection = Field(default_factory=SfuSection)
