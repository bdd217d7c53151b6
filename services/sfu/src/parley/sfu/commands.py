"""RoomCommand from room-state (RoomService calls on live sessions), run inside the room's actor.

room-state wrote the record before sending the command: a change the command makes here goes to
clients with the version room-state sends (``participant_version``), and a command that changes
nothing here sends nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livekit.protocol import models, rtc
from livekit.protocol import room as room_pb

from parley.bus import ErrorCode, RpcError
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.protocol.participant_fields import apply_fields
from parley.sfu import data_router, metadata, publish, subscriptions
from parley.sfu.participant import Participant

if TYPE_CHECKING:
    from parley.sfu.room import Room


def _participant(room: Room, identity: str) -> Participant:
    p = room.by_identity(identity)
    if p is None:
        raise RpcError(ErrorCode.NOT_FOUND, f"participant {identity!r} is not in room {room.name!r}")
    return p


async def execute(room: Room, command: node_pb2.RoomCommand) -> node_pb2.RoomCommandResult:
    kind = command.WhichOneof("command")
    result = node_pb2.RoomCommandResult()
    if kind == "remove_participant":
        p = _participant(room, command.remove_participant.identity)
        result.participant.CopyFrom(p.info)
        await room.remove(p, models.DisconnectReason.PARTICIPANT_REMOVED)
    elif kind == "mute_published_track":
        mute = command.mute_published_track
        p = _participant(room, mute.identity)
        track = p.published.get(mute.track_sid)
        if track is None:
            raise RpcError(ErrorCode.NOT_FOUND, f"track {mute.track_sid!r} not found")
        p.send(rtc.SignalResponse(mute=rtc.MuteTrackRequest(sid=mute.track_sid, muted=mute.muted)))
        publish.set_muted(room, p, mute.track_sid, mute.muted, version=command.participant_version)
        result.track.CopyFrom(track.info)
    elif kind == "update_participant":
        req = command.update_participant
        p = _participant(room, req.identity)
        changed = apply_fields(p.info, name=req.name, metadata=req.metadata, attributes=req.attributes)
        if changed:
            metadata.report_fields(room, p, name=req.name, metadata=req.metadata, attributes=req.attributes)
        if req.HasField("permission"):
            changed |= p.info.permission != req.permission
            metadata.apply_permission(room, p, req.permission)
        if changed:
            metadata.publish_change(room, p, version=command.participant_version)
        result.participant.CopyFrom(p.info)
    elif kind == "update_subscriptions":
        subs = command.update_subscriptions
        p = _participant(room, subs.identity)
        sids = list(subs.track_sids)
        for pt in subs.participant_tracks:
            sids.extend(pt.track_sids)
        subscriptions.update(room, p, sids, subs.subscribe)
    elif kind == "send_data":
        _send_data(room, command.send_data)
    elif kind == "update_room":
        room.info.metadata = command.update_room.metadata
        message = rtc.SignalResponse(room_update=rtc.RoomUpdate(room=room.info))
        for p in list(room.participants.values()):
            p.send(message)
    elif kind == "tap":
        result.tap.CopyFrom(await room.taps.handle(command.tap))
    elif kind == "delete_room":
        for p in list(room.participants.values()):
            await room.remove(p, models.DisconnectReason.ROOM_DELETED)
    else:
        raise RpcError(ErrorCode.UNIMPLEMENTED, f"unknown room command {kind!r}")
    return result


def _send_data(room: Room, req: room_pb.SendDataRequest) -> None:
    kind = req.kind if req.kind in data_router.LABEL_OF_KIND else models.DataPacket.Kind.RELIABLE
    user = models.UserPacket(
        payload=req.data,
        destination_sids=req.destination_sids,
        destination_identities=req.destination_identities,
    )
    if req.HasField("topic"):
        user.topic = req.topic
    if req.nonce:
        user.nonce = req.nonce
    packet = models.DataPacket(kind=kind, user=user, destination_identities=req.destination_identities)
    data_router.deliver(
        packet, list(room.participants.values()), sender=None, destination_sids=req.destination_sids
    )
