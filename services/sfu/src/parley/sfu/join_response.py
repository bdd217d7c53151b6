"""The JoinResponse (livekit-protocol §2.3): every field the SDKs rely on."""

from __future__ import annotations

from collections.abc import Iterable

from livekit.protocol import models, rtc

from parley.protocol.gen.turn.v1 import turn_pb2
from parley.sfu.participant import Participant

PING_INTERVAL = 5
PING_TIMEOUT = 15
SERVER_PROTOCOL = 16
AGENT_PROTOCOL = 1


def server_info(*, version: str, region: str, node_id: str) -> models.ServerInfo:
    return models.ServerInfo(
        edition=models.ServerInfo.Edition.Standard,
        version=version,
        protocol=SERVER_PROTOCOL,
        region=region,
        node_id=node_id,
        agent_protocol=AGENT_PROTOCOL,
    )


def build_join_response(
    *,
    room: models.Room,
    participant: Participant,
    others: Iterable[Participant],
    ice: turn_pb2.IceServersResponse,
    version: str,
    region: str,
    node_id: str,
) -> rtc.JoinResponse:
    permission = participant.permission
    join = rtc.JoinResponse(
        room=room,
        participant=participant.info,
        other_participants=[o.info for o in others if not o.hidden and not o.closed],
        server_version=version,
        ice_servers=list(ice.ice_servers),
        subscriber_primary=participant.subscriber_primary,
        server_region=region,
        ping_interval=PING_INTERVAL,
        ping_timeout=PING_TIMEOUT,
        server_info=server_info(version=version, region=region, node_id=node_id),
        fast_publish=permission.can_publish,
        client_configuration=models.ClientConfiguration(
            resume_connection=models.ClientConfigSetting.DISABLED,
            force_relay=models.ClientConfigSetting.ENABLED
            if ice.force_relay
            else models.ClientConfigSetting.UNSET,
        ),
    )
    return join
