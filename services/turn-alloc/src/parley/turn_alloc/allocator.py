"""Answer IceServers: TURN servers with fresh credentials (the request's region first), then STUN."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from livekit.protocol import rtc

from parley.bus import subjects
from parley.config.sections import TurnServerConfig
from parley.observability import get_logger
from parley.protocol.gen.turn.v1 import turn_pb2
from parley.turn_alloc import metrics
from parley.turn_alloc.config import TurnAllocConfig
from parley.turn_alloc.credentials import mint, rest_user
from parley.turn_alloc.errors import QuotaExceeded
from parley.turn_alloc.health import HealthMonitor
from parley.turn_alloc.quota import Quota

log = get_logger("parley.turn_alloc")


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def turn_urls(server: TurnServerConfig) -> list[str]:
    """RFC 7065 URIs for every transport the server offers."""
    host = _host(server.host)
    urls = []
    if "udp" in server.transports:
        urls.append(f"turn:{host}:{server.port}?transport=udp")
    if "tcp" in server.transports:
        urls.append(f"turn:{host}:{server.port}?transport=tcp")
    if "tls" in server.transports and server.tls_port:
        urls.append(f"turns:{host}:{server.tls_port}?transport=tcp")
    return urls


def by_region(servers: Sequence[TurnServerConfig], region: str) -> list[TurnServerConfig]:
    """The servers of ``region`` first, then the others; configuration order otherwise."""
    if not region:
        return list(servers)
    return [s for s in servers if s.region == region] + [s for s in servers if s.region != region]


class IceServerAllocator:
    def __init__(
        self,
        config: TurnAllocConfig,
        monitor: HealthMonitor,
        quota: Quota,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._monitor = monitor
        self._quota = quota
        self._clock = clock

    async def ice_servers(self, request: turn_pb2.IceServersRequest) -> turn_pb2.IceServersResponse:
        turn = self._config.turn
        response = turn_pb2.IceServersResponse()
        servers = by_region(self._monitor.healthy(), request.region) if turn.enabled else []
        servers = [s for s in servers if turn_urls(s)]
        if servers:
            expires_at = int(self._clock()) + turn.credential_ttl
            participant = request.participant_identity or request.participant_sid
            key = f"{subjects.room_token(request.room_name)}:{participant}"
            if not await self._quota.take(
                key, expires_at=expires_at, limit=turn.max_allocations_per_participant
            ):
                metrics.refused.add(1)
                log.warning(
                    "TURN quota exhausted",
                    room=request.room_name,
                    participant=participant,
                    limit=turn.max_allocations_per_participant,
                )
                raise QuotaExceeded(participant, turn.max_allocations_per_participant)
            user = rest_user(request.participant_sid, request.participant_identity)
            for server in servers:
                credential = mint(self._config.secret_of(server), user, expires_at=expires_at)
                response.ice_servers.append(
                    rtc.ICEServer(
                        urls=turn_urls(server), username=credential.username, credential=credential.password
                    )
                )
            metrics.issued.add(1, {"region": request.region or "-"})
            log.debug(
                "TURN credentials issued",
                room=request.room_name,
                participant=participant,
                servers=[f"{s.host}:{s.port}" for s in servers],
                expires_at=expires_at,
            )
        elif turn.enabled and turn.servers:
            log.warning("no healthy TURN server to hand out", room=request.room_name)
        if self._config.rtc.stun_servers:
            response.ice_servers.append(rtc.ICEServer(urls=list(self._config.rtc.stun_servers)))
        # Relay-only without a relay cannot connect: force it only when a TURN server is handed out.
        response.force_relay = turn.force_relay and bool(servers)
        return response
