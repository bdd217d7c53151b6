"""Configuration sections shared by the services (LiveKit's livekit.yaml layout where it applies)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"
MIN_SECRET_LENGTH = 32


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NatsConfig(Section):
    """Where the bus is."""

    url: str = "nats://127.0.0.1:4222"
    """NATS server URL(s), comma separated."""
    connect_timeout: float = 5.0
    """Seconds to wait for the first connection."""
    stream_replicas: int = Field(default=1, ge=1, le=5)
    """JetStream replicas for Parley's streams (3 on a cluster)."""


class RedisConfig(Section):
    """The Redis/Valkey that room-state, dispatch and turn-alloc keep their state in: one server at
    ``address``, or the primary that Redis Sentinel names (``sentinel_addresses`` set; LiveKit's keys)."""

    address: str = "127.0.0.1:6379"
    """host:port (ignored when sentinel_addresses is set)."""
    db: int = 0
    username: str = ""
    password: str = ""
    use_tls: bool = False
    key_prefix: str = "parley"
    """Prefix of every key Parley writes."""
    sentinel_master_name: str = ""
    """The name the sentinels monitor the primary under (``sentinel monitor <name> ...``)."""
    sentinel_addresses: list[str] = Field(default_factory=list)
    """Sentinels as host:port; set = ask them for the primary and follow it after a failover."""
    sentinel_username: str = ""
    """ACL user for the sentinels themselves (username/password are the data nodes')."""
    sentinel_password: str = ""
    dial_timeout: int = Field(default=2000, ge=0)
    """Milliseconds to open a connection (a server or a sentinel); 0 = no limit."""
    read_timeout: int = Field(default=3000, ge=0)
    """Milliseconds to wait for a reply; 0 = the default, 3000 (LiveKit's 0 = go-redis's 3 s). A
    primary that vanished without a reset (powered off, partitioned) fails a command after this
    long, and the command is retried against the new primary (failover_wait); keep it well above
    the slowest command."""
    failover_wait: float = Field(default=15.0, ge=0)
    """Seconds a command keeps being retried, with backoff, while the connection fails (a Sentinel
    failover, a restart, a demoted primary): a failover delays requests instead of failing them."""

    @model_validator(mode="after")
    def _sentinel(self) -> RedisConfig:
        if self.sentinel_addresses and not self.sentinel_master_name:
            raise ValueError("sentinel_master_name: required when sentinel_addresses is set")
        for item in self.sentinel_addresses:
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"sentinel_addresses: {item!r} is not host:port")
        return self

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinel_addresses)

    @property
    def url(self) -> str:
        scheme = "rediss" if self.use_tls else "redis"
        auth = ""
        if self.username or self.password:
            auth = f"{self.username}:{self.password}@"
        return f"{scheme}://{auth}{self.address}/{self.db}"


class RtcConfig(Section):
    """WebRTC transport settings of the SFU nodes."""

    port_range_start: int = Field(default=50000, ge=1024, le=65535)
    """First UDP port for ICE."""
    port_range_end: int = Field(default=60000, ge=1024, le=65535)
    """Last UDP port for ICE."""
    node_ip: str = ""
    """The IP advertised in ICE candidates; empty = the host's addresses."""
    use_loopback: bool = False
    """Gather candidates on 127.0.0.1 (dev and tests)."""
    extra_host_addresses: list[str] = Field(default_factory=list)
    """More local addresses to gather ICE host candidates on, besides node_ip or 127.0.0.1 (tests: the
    host side of a network namespace's veth). Without node_ip and use_loopback every address is used."""
    stun_servers: list[str] = Field(default_factory=list)
    """STUN servers handed to clients, e.g. stun:stun.example.org:3478."""
    packet_cache_size: int = Field(default=512, ge=64, le=16384)
    """Packets kept per video track for NACK retransmission."""
    bwe_min_bitrate: int = Field(default=1_500_000, ge=100_000)
    """Floor of the REMB sent to publishers (bit/s); enough for a 720p simulcast layer."""
    bwe_start_bitrate: int = Field(default=3_000_000, ge=100_000)
    """First REMB sent to a publisher (bit/s)."""
    bwe_max_bitrate: int = Field(default=10_000_000, ge=100_000)
    """Cap of the REMB sent to publishers (bit/s)."""

    @model_validator(mode="after")
    def _range(self) -> RtcConfig:
        if self.port_range_end < self.port_range_start:
            raise ValueError("port_range_end must be >= port_range_start")
        return self


class RoomConfig(Section):
    """Room defaults (livekit.yaml `room`)."""

    auto_create: bool = True
    """Create a room when a participant joins one that does not exist."""
    empty_timeout: int = Field(default=300, ge=0)
    """Seconds an empty room that nobody joined stays open."""
    departure_timeout: int = Field(default=20, ge=0)
    """Seconds a room stays open after its last participant left."""
    max_participants: int = Field(default=0, ge=0)
    """0 = unlimited."""


class WebhookConfig(Section):
    """Webhook delivery (livekit.yaml `webhook`)."""

    api_key: str = ""
    """The API key whose secret signs webhook requests."""
    urls: list[str] = Field(default_factory=list)
    """Endpoints that receive every event."""
    retention: float = Field(default=86400.0, gt=0)
    """Seconds an event is retried before it expires."""
    request_timeout: float = Field(default=5.0, gt=0)
    backoff_min: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=30.0, gt=0)


TurnTransport = Literal["udp", "tcp", "tls"]


class TurnServerConfig(Section):
    """One TURN server (coturn with use-auth-secret)."""

    host: str
    port: int = 3478
    tls_port: int = 0
    transports: list[TurnTransport] = Field(default_factory=lambda: list[TurnTransport](["udp", "tcp"]))
    region: str = ""
    secret: str = ""
    """The coturn static-auth-secret; empty = turn.secret."""


class TurnConfig(Section):
    """TURN (livekit.yaml `turn`, for external coturn servers)."""

    enabled: bool = False
    secret: str = ""
    """Shared secret (coturn static-auth-secret)."""
    credential_ttl: int = Field(default=300, ge=10, le=86400)
    """Seconds a TURN credential lives."""
    servers: list[TurnServerConfig] = Field(default_factory=list)
    force_relay: bool = False
    """Tell clients to use relay candidates only."""
    max_allocations_per_participant: int = Field(default=12, ge=1)
    health_interval: float = Field(default=5.0, gt=0)


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json_output: bool | None = None
    """JSON lines; default: JSON unless development."""


# Each service adds one section of its own; one YAML file configures them all, so a service
# skips the other services' sections (and still refuses any other unknown key).
SERVICE_SECTIONS = frozenset(
    {"signaling", "sfu", "room_state", "dispatch", "webhook_service", "turn_alloc", "egress", "egress_worker"}
)


class ParleyConfig(Section):
    """Sections every service shares. Each service's config subclasses this."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _skip_other_services(cls, data: Any) -> Any:
        if isinstance(data, dict):
            own = set(cls.model_fields)
            return {k: v for k, v in data.items() if k in own or k not in SERVICE_SECTIONS}
        return data

    development: bool = False
    """Dev mode: devkey/secret, console logs, the dev token endpoint."""
    keys: dict[str, str] = Field(default_factory=dict)
    """API key -> secret."""
    port: int = Field(default=7880, ge=0, le=65535)
    """The edge's HTTP/WebSocket port (also what clients reach)."""
    bind_addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    region: str = ""
    node_id: str = ""
    """Empty: generated at start."""
    health_port: int = Field(default=0, ge=0, le=65535)
    """This process's health and /metrics port; 0 = free port."""
    nats: NatsConfig = Field(default_factory=NatsConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    rtc: RtcConfig = Field(default_factory=RtcConfig)
    room: RoomConfig = Field(default_factory=RoomConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    turn: TurnConfig = Field(default_factory=TurnConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _keys(self) -> ParleyConfig:
        if not self.keys and self.development:
            self.keys = {DEV_API_KEY: DEV_API_SECRET}
        if not self.development:
            for key, secret in self.keys.items():
                if len(secret) < MIN_SECRET_LENGTH:
                    raise ValueError(
                        f"keys.{key}: secret is shorter than {MIN_SECRET_LENGTH} characters "
                        "(allowed only in development mode)"
                    )
        if self.webhook.urls and not self.webhook.api_key:
            if len(self.keys) != 1:
                raise ValueError("webhook.api_key: required when webhook.urls is set and several keys exist")
            self.webhook.api_key = next(iter(self.keys))
        if self.webhook.api_key and self.webhook.api_key not in self.keys:
            raise ValueError(f"webhook.api_key: {self.webhook.api_key!r} is not in keys")
        return self

    @property
    def log_json(self) -> bool:
        if self.logging.json_output is None:
            return not self.development
        return self.logging.json_output
