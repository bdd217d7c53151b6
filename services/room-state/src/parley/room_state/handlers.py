"""The RPC handlers: decode nothing, decide nothing; each runs one room operation and its follow-ups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livekit.protocol import models
from livekit.protocol import room as lk

from parley.bus import Binding, bind, rpcs
from parley.config import RoomConfig
from parley.observability import get_logger
from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.protocol.ids import now_ms
from parley.room_state import rooms
from parley.room_state.commands import NodeCommands
from parley.room_state.errors import InvalidRequest, ParticipantNotFound, RoomNotFound
from parley.room_state.nodes import NodeRegistry
from parley.room_state.outbox import OutboxRelay
from parley.room_state.record import RoomRecord
from parley.room_state.store import Mutation, Store, T

log = get_logger("parley.room_state.handlers")

RPC_DEFAULT_TIMEOUT_MS = 10_000
"""LiveKit's default when PerformRpcRequest.response_timeout_ms is 0."""
RPC_MARGIN = 10.0
"""Seconds on top of the RPC's timeout: the node's ack wait (7 s) and the bus hops."""
TAP_TIMEOUT = 5.0
"""Seconds the hosting node has to start (or stop) a tap: a job in the room's queue, one UDP socket."""


class Handlers:
    def __init__(
        self,
        store: Store,
        nodes: NodeRegistry,
        commands: NodeCommands,
        relay: OutboxRelay,
        defaults: RoomConfig,
        *,
        reconcile_grace: float = 10.0,
        on_join: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self._reconcile_grace_ms = int(reconcile_grace * 1000)
        self._on_join = on_join
        """Called with (room, sid, node) after each committed JoinRoom (the join check)."""
        self._store = store
        self._nodes = nodes
        self._commands = commands
        self._relay = relay
        self._defaults = defaults

    async def _mutate(self, room: str, fn: Mutation[T]) -> T:
        result = await self._store.mutate(room, fn)
        self._relay.wake()
        return result

    def routes(self) -> list[Binding]:
        """Each RPC of ``served.SERVES`` with its handler (types checked against the declaration)."""
        return [
            bind(rpcs.JOIN_ROOM, self.join_room),
            bind(rpcs.LOCATE_PARTICIPANT, self.locate_participant),
            bind(rpcs.MOVE_ROOMS, self.move_rooms),
            bind(rpcs.REPORT, self.report),
            bind(rpcs.PARTICIPANT_ACTIVE, self.participant_active),
            bind(rpcs.PARTICIPANT_LEFT, self.participant_left),
            bind(rpcs.TRACK_PUBLISHED, self.track_published),
            bind(rpcs.TRACK_UNPUBLISHED, self.track_unpublished),
            bind(rpcs.CREATE_ROOM, self.create_room),
            bind(rpcs.LIST_ROOMS, self.list_rooms),
            bind(rpcs.DELETE_ROOM, self.delete_room),
            bind(rpcs.LIST_PARTICIPANTS, self.list_participants),
            bind(rpcs.GET_PARTICIPANT, self.get_participant),
            bind(rpcs.REMOVE_PARTICIPANT, self.remove_participant),
            bind(rpcs.MUTE_PUBLISHED_TRACK, self.mute_published_track),
            bind(rpcs.UPDATE_PARTICIPANT, self.update_participant),
            bind(rpcs.UPDATE_SUBSCRIPTIONS, self.update_subscriptions),
            bind(rpcs.SEND_DATA, self.send_data),
            bind(rpcs.UPDATE_ROOM_METADATA, self.update_room_metadata),
            bind(rpcs.PERFORM_RPC, self.perform_rpc),
            bind(rpcs.TAP_TRACK, self.tap_track),
        ]

    # internal ---------------------------------------------------------------------------------
    async def join_room(self, req: pb.JoinRoomRequest) -> pb.JoinRoomResponse:
        live, candidate = await self._nodes.placement()
        allow = req.create_if_missing or self._defaults.auto_create
        joined = await self._mutate(req.room_name, rooms.join(req, self._defaults, allow, live, candidate))
        if self._on_join is not None:
            self._on_join(req.room_name, joined.participant.sid, joined.node_id)
        return joined

    async def rollback_join(self, room: str, sid: str) -> None:
        """A join whose session never started (join_watch): the participant leaves (JOIN_FAILURE)."""
        await self._mutate(room, rooms.participant_left(sid, rooms.Reason.JOIN_FAILURE))

    async def report(self, req: pb.SfuReport) -> pb.ReconcileResult:
        """One SFU report, applied once per (reporter, seq) in its room (see ``rooms.reported``)."""
        kind = req.WhichOneof("report")
        if kind is None:
            raise InvalidRequest("empty SfuReport")
        if kind == "node_sessions":
            return await self.reconcile_node(req.node_sessions)
        inner: Any = getattr(req, kind)
        mutation: Mutation[Any]
        if kind == "participant_active":
            mutation = rooms.participant_active(inner.participant_sid)
        elif kind == "participant_left":
            mutation = rooms.participant_left(inner.participant_sid, inner.reason)
        elif kind == "participant_updated":
            mutation = rooms.participant_updated(inner)
        elif kind == "track_published":
            mutation = rooms.track_published(inner.participant_sid, inner.track)
        elif kind == "track_unpublished":
            mutation = rooms.track_unpublished(inner.participant_sid, inner.track_sid)
        else:
            mutation = rooms.track_updated(inner)
        await self._mutate(inner.room_name, rooms.reported(req.reporter_id, req.seq, mutation))
        return pb.ReconcileResult()

    async def reconcile_node(self, req: pb.NodeSessions) -> pb.ReconcileResult:
        """The sessions a node really holds: its participants that no session backs, and that
        joined more than ``room_state.reconcile_grace`` before the snapshot, leave (STATE_MISMATCH)."""
        held = {r.room_name: set(r.participant_sids) for r in req.rooms}
        cutoff = min(req.taken_at_ms or now_ms(), now_ms()) - self._reconcile_grace_ms
        result = pb.ReconcileResult()
        for name in sorted(set(held) | set(await self.rooms_on(req.node_id))):
            found = await self._mutate(name, rooms.reconcile(req.node_id, held.get(name, set()), cutoff))
            for participant in found.removed:
                log.warning(
                    "participant removed: its node holds no session for it",
                    room=name,
                    participant=participant.sid,
                    identity=participant.identity,
                    node_id=req.node_id,
                    reason="STATE_MISMATCH",
                )
            if found.removed:
                result.removed.add(room_name=name, participant_sids=[p.sid for p in found.removed])
            if found.unknown:
                result.unknown.add(room_name=name, participant_sids=found.unknown)
        return result

    async def participant_active(self, req: pb.ParticipantActiveRequest) -> pb.Ack:
        await self._mutate(req.room_name, rooms.participant_active(req.participant_sid))
        return pb.Ack()

    async def participant_left(self, req: pb.ParticipantLeftRequest) -> pb.Ack:
        await self._mutate(req.room_name, rooms.participant_left(req.participant_sid, req.reason))
        return pb.Ack()

    async def track_published(self, req: pb.TrackPublishedRequest) -> pb.Ack:
        await self._mutate(req.room_name, rooms.track_published(req.participant_sid, req.track))
        return pb.Ack()

    async def track_unpublished(self, req: pb.TrackUnpublishedRequest) -> pb.Ack:
        await self._mutate(req.room_name, rooms.track_unpublished(req.participant_sid, req.track_sid))
        return pb.Ack()

    # RoomService ------------------------------------------------------------------------------
    async def create_room(self, req: lk.CreateRoomRequest) -> models.Room:
        _, node = await self._nodes.placement(req.node_id)
        config = rooms.config_from_create(req)
        room, _ = await self._mutate(req.name, rooms.create_room(req.name, config, self._defaults, node))
        return room

    async def list_rooms(self, req: lk.ListRoomsRequest) -> lk.ListRoomsResponse:
        return lk.ListRoomsResponse(rooms=await self._store.list_rooms(list(req.names)))

    async def delete_room(self, req: lk.DeleteRoomRequest) -> lk.DeleteRoomResponse:
        closed = await self._mutate(req.room, rooms.delete_room())
        await self.on_closed(closed)
        return lk.DeleteRoomResponse()

    async def on_closed(self, closed: rooms.Closed) -> None:
        self._relay.wake()
        command = node_pb2.RoomCommand(room_name=closed.room.name)
        command.delete_room.room = closed.room.name
        await self._commands.send(closed.node_id, command)

    async def list_participants(self, req: lk.ListParticipantsRequest) -> lk.ListParticipantsResponse:
        record = await self._store.load(req.room)
        if record is None:
            raise RoomNotFound()
        ordered = sorted(record.participants.values(), key=lambda p: (p.joined_at_ms, p.identity))
        return lk.ListParticipantsResponse(participants=ordered)

    async def rooms_on(self, node_id: str) -> list[str]:
        """Names of the rooms placed on ``node_id``."""
        names = []
        for room in await self._store.list_rooms():
            record = await self._store.load(room.name)
            if record is not None and record.node_id == node_id:
                names.append(room.name)
        return names

    async def move_rooms(self, req: pb.MoveRoomsRequest) -> pb.MoveRoomsResponse:
        """A draining node's rooms go to the least loaded other live node (none: they stay)."""
        response = pb.MoveRoomsResponse()
        for name in await self.rooms_on(req.node_id):
            _, target = await self._nodes.placement(exclude=req.node_id)
            if not target:
                continue
            moved: bool = await self._mutate(name, rooms.move_room(req.node_id, target))
            if moved:
                response.moved[name] = target
        return response

    async def evacuate(self, node_id: str) -> list[str]:
        """A lost node: its rooms' participants leave (MIGRATION) and the rooms are placed again."""
        moved = []
        for name in await self.rooms_on(node_id):
            _, target = await self._nodes.placement(exclude=node_id)
            await self._mutate(name, rooms.evacuate(node_id, target))
            moved.append(name)
        return moved

    async def locate_participant(self, req: pb.LocateParticipantRequest) -> pb.LocateParticipantResponse:
        """A resuming client: its participant (matched by sid and identity) and the hosting node."""
        record = await self._store.load(req.room_name)
        if record is None:
            raise RoomNotFound()
        participant = record.participants.get(req.identity)
        if participant is None or participant.sid != req.participant_sid:
            raise ParticipantNotFound()
        return pb.LocateParticipantResponse(node_id=record.node_id, participant=participant)

    async def get_participant(self, req: lk.RoomParticipantIdentity) -> models.ParticipantInfo:
        record = await self._store.load(req.room)
        if record is None:
            raise RoomNotFound()
        participant = record.participants.get(req.identity)
        if participant is None:
            raise ParticipantNotFound()
        return participant

    async def remove_participant(self, req: lk.RoomParticipantIdentity) -> lk.RemoveParticipantResponse:
        node = await self._mutate(req.room, rooms.remove_participant(req.identity))
        command = node_pb2.RoomCommand(room_name=req.room)
        command.remove_participant.CopyFrom(req)
        await self._commands.send(node, command)
        return lk.RemoveParticipantResponse()

    async def mute_published_track(self, req: lk.MuteRoomTrackRequest) -> lk.MuteRoomTrackResponse:
        muted = await self._mutate(req.room, rooms.mute_track(req.identity, req.track_sid, req.muted))
        # sent even when nothing changed here: the node's view may differ (a report in flight)
        command = node_pb2.RoomCommand(room_name=req.room, participant_version=muted.participant_version)
        command.mute_published_track.CopyFrom(req)
        await self._commands.send(muted.node_id, command)
        return lk.MuteRoomTrackResponse(track=muted.track)

    async def update_participant(self, req: lk.UpdateParticipantRequest) -> models.ParticipantInfo:
        node, participant = await self._mutate(req.room, rooms.update_participant(req))
        command = node_pb2.RoomCommand(room_name=req.room, participant_version=participant.version)
        command.update_participant.CopyFrom(req)
        await self._commands.send(node, command)
        return participant

    async def update_subscriptions(
        self, req: lk.UpdateSubscriptionsRequest
    ) -> lk.UpdateSubscriptionsResponse:
        record = await self._require_participant(req.room, req.identity)
        command = node_pb2.RoomCommand(room_name=req.room)
        command.update_subscriptions.CopyFrom(req)
        await self._commands.send(record.node_id, command)
        return lk.UpdateSubscriptionsResponse()

    async def send_data(self, req: lk.SendDataRequest) -> lk.SendDataResponse:
        record = await self._store.load(req.room)
        if record is None:
            raise RoomNotFound()
        command = node_pb2.RoomCommand(room_name=req.room)
        command.send_data.CopyFrom(req)
        await self._commands.send(record.node_id, command)
        return lk.SendDataResponse()

    async def update_room_metadata(self, req: lk.UpdateRoomMetadataRequest) -> models.Room:
        node, room = await self._mutate(req.room, rooms.update_room_metadata(req.metadata))
        command = node_pb2.RoomCommand(room_name=req.room)
        command.update_room.CopyFrom(room)
        await self._commands.send(node, command)
        return room

    async def perform_rpc(self, req: lk.PerformRpcRequest) -> lk.PerformRpcResponse:
        """Errors travel back unchanged (unlike the fire-and-forget commands above): the node's
        answer is the result."""
        record = await self._require_participant(req.room, req.destination_identity)
        if not record.node_id:
            raise ParticipantNotFound()
        command = node_pb2.RoomCommand(room_name=req.room)
        command.perform_rpc.CopyFrom(req)
        timeout_ms = req.response_timeout_ms or RPC_DEFAULT_TIMEOUT_MS
        result = await self._commands.request(record.node_id, command, timeout_ms / 1000 + RPC_MARGIN)
        return result.rpc

    async def tap_track(self, req: node_pb2.TapRequest) -> node_pb2.TapResponse:
        """An egress worker's tap of one track, started or stopped by the room's node (the node's
        errors, such as an unknown track, travel back unchanged)."""
        record = await self._store.load(req.room_name)
        if record is None or not record.node_id:
            raise RoomNotFound()
        command = node_pb2.RoomCommand(room_name=req.room_name)
        command.tap.CopyFrom(req)
        result = await self._commands.request(record.node_id, command, TAP_TIMEOUT)
        return result.tap

    async def _require_participant(self, room: str, identity: str) -> RoomRecord:
        record = await self._store.load(room)
        if record is None:
            raise RoomNotFound()
        if identity not in record.participants:
            raise ParticipantNotFound()
        return record
