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
    resume: bool = False,
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
        client_configuration=client_configuration(ice, resume=resume),
    )
    return join


def client_configuration(ice: turn_pb2.IceServersResponse, *, resume: bool) -> models.ClientConfiguration:
    """``resume``: the node keeps sessions through signalling drops (``sfu.resume_window``)."""
    return models.ClientConfiguration(
        resume_connection=models.ClientConfigSetting.UNSET if resume else models.ClientConfigSetting.DISABLED,
        force_relay=models.ClientConfigSetting.ENABLED
        if ice.force_relay
        else models.ClientConfigSetting.UNSET,
    )


def build_reconnect_response(
    *, participant: Participant, ice: turn_pb2.IceServersResponse, version: str, region: str, node_id: str
) -> rtc.ReconnectResponse:
    """The first frame of a resumed connection. ``last_message_seq``: the last reliable data packet
    received from the client, so it resends what it sent while disconnected."""
    return rtc.ReconnectResponse(
        ice_servers=list(ice.ice_servers),
        client_configuration=client_configuration(ice, resume=True),
        server_info=server_info(version=version, region=region, node_id=node_id),
        last_message_seq=participant.last_reliable_seq,
    )
