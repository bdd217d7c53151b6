"""The SFU node: serves session.start / signal / command for its id, owns the rooms, reports load."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from google.protobuf.message import DecodeError
from livekit.protocol import models, rtc
from livekit.protocol import room as room_pb

from parley.bus import (
    Binding,
    Bus,
    BusError,
    Delivery,
    ErrorCode,
    Rpc,
    RpcError,
    Subscription,
    bind,
    rpcs,
    serve_all,
    subjects,
)
from parley.observability import TaskSet, get_logger, wait_event
from parley.protocol.gen.room.v1 import room_state_pb2 as rs
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.protocol.ids import now_ms
from parley.sfu import commands, engine, rpc, signal_handler
from parley.sfu.config import SfuConfig
from parley.sfu.edge_watch import EdgeWatch
from parley.sfu.ice_servers import fetch_ice_servers
from parley.sfu.metrics import sfu_metrics
from parley.sfu.room import Room, RoomHost
from parley.sfu.state_reporter import StateReporter

log = get_logger("parley.sfu.node")

SERVES: tuple[Rpc[Any, Any], ...] = (
    rpcs.SESSION_START,
    rpcs.SESSION_RESUME,
    rpcs.ROOM_COMMAND,
    rpcs.NODE_SESSIONS,
)
"""What a node serves on its own subjects (``routes`` binds each one)."""

EMPTY_ROOM_GRACE_SECONDS = 2.0


class Node:
    def __init__(
        self, config: SfuConfig, bus: Bus, node_id: str, *, media: engine.MediaContext | None = None
    ) -> None:
        self.config = config
        self.bus = bus
        self.node_id = node_id
        if media is None:
            media = engine.configure(config.rtc)
            media.cached_send_path = config.sfu.cached_send_path
        self.media = media
        """This node's media engine context (settings, counters, per-transport state)."""
        self.tasks = TaskSet(f"sfu.{node_id}")
        self.rooms: dict[str, Room] = {}
        self.reporter = StateReporter(bus, self.tasks, retry_max=config.sfu.report_retry_max)
        self.edges = EdgeWatch(bus, lambda: list(self.rooms.values()), config.sfu.edge_check_interval)
        self._subs: list[Subscription] = []
        self.started_at = int(time.time())
        self._cpu = CpuMeter()
        self.draining = False
        self._emptied = asyncio.Event()
        """Set when the last room closed (a drain waits for it)."""
        self._host = RoomHost(
            bus=self.bus,
            config=self.config,
            node_id=self.node_id,
            reporter=self.reporter,
            on_empty=self._room_empty,
            media=self.media,
        )

    def routes(self) -> list[Binding]:
        return [
            bind(rpcs.SESSION_START, self._start_session),
            bind(rpcs.SESSION_RESUME, self._resume_session),
            bind(rpcs.ROOM_COMMAND, self._on_command),
            bind(rpcs.NODE_SESSIONS, self._sessions),
        ]

    async def start(self) -> None:
        self._subs += await serve_all(self.bus, SERVES, self.routes(), topic=self.node_id)
        self._subs.append(await self.bus.subscribe(subjects.sfu_signal(self.node_id), self._on_signal))
        await self.publish_stats()
        self.tasks.spawn(self._stats_loop(), name="node-stats")
        self.tasks.spawn(self._sessions_loop(), name="node-sessions")
        self.tasks.spawn(self.edges.run(), name="edge-watch")
        metrics = sfu_metrics()
        metrics.register(self)
        self.tasks.spawn(metrics.sample_loop(self, self.config.sfu.stats_interval), name="metrics-sample")
        log.info("sfu node serving", node_id=self.node_id)

    # -- sessions ---------------------------------------------------------------------------------
    def _room(self, info: models.Room) -> Room:
        room = self.rooms.get(info.name)
        if room is None or room.closed:
            room = Room(self._host, info)
            self.rooms[info.name] = room
        return room

    async def _start_session(self, request: relay_pb2.StartSessionRequest) -> relay_pb2.StartSessionResponse:
        if self.draining:
            raise RpcError(ErrorCode.UNAVAILABLE, "node is draining")
        ice = await fetch_ice_servers(
            self.bus,
            room=request.room.name,
            identity=request.participant.identity,
            sid=request.participant.sid,
            region=request.region,
            timeout=self.config.sfu.ice_servers_timeout,
        )
        room = self._room(request.room)
        await room.call(lambda: room.join(request, ice))
        return relay_pb2.StartSessionResponse()

    async def _resume_session(
        self, request: relay_pb2.ResumeSessionRequest
    ) -> relay_pb2.ResumeSessionResponse:
        room = self.rooms.get(request.room_name)
        if room is None or room.closed:
            raise RpcError(ErrorCode.NOT_FOUND, f"room {request.room_name!r} is not on this node")
        ice = await fetch_ice_servers(
            self.bus,
            room=request.room_name,
            identity=request.identity,
            sid=request.participant_sid,
            region=request.region,
            timeout=self.config.sfu.ice_servers_timeout,
        )
        await room.call(lambda: room.resume(request, ice))
        return relay_pb2.ResumeSessionResponse()

    async def _on_signal(self, delivery: Delivery) -> None:
        signal = relay_pb2.ClientSignal()
        try:
            signal.ParseFromString(delivery.data)
        except DecodeError:
            log.warning("undecodable ClientSignal dropped")
            return
        room = self.rooms.get(signal.room_name)
        if room is None:
            return
        if signal.closed:
            room.submit(lambda: self._connection_closed(room, signal.connection_id))
            return
        request = rtc.SignalRequest()
        try:
            request.ParseFromString(signal.request)
        except DecodeError:
            log.info("undecodable SignalRequest dropped", room=room.name)
            return

        async def job() -> None:
            p = room.by_connection(signal.connection_id)
            if p is not None:
                await signal_handler.handle(room, p, request)

        room.submit(job)

    async def _connection_closed(self, room: Room, connection_id: str) -> None:
        """The signalling connection ended without a leave (a leave removes the participant first):
        the client vanished, its network dropped, or the edge timed it out. The session waits for a
        resume (``Room.signal_lost``); a connection already replaced by a resume is ignored."""
        p = room.by_connection(connection_id)
        if p is not None:
            await room.signal_lost(p)

    async def _on_command(self, command: node_pb2.RoomCommand) -> node_pb2.RoomCommandResult:
        room = self.rooms.get(command.room_name)
        if room is None:
            raise RpcError(ErrorCode.NOT_FOUND, f"room {command.room_name!r} is not on this node")
        if command.WhichOneof("command") == "perform_rpc":
            return await self._perform_rpc(room, command.perform_rpc)
        return await room.call(lambda: commands.execute(room, command))

    async def _perform_rpc(self, room: Room, call: room_pb.PerformRpcRequest) -> node_pb2.RoomCommandResult:
        """Send the request inside the room's actor; wait for the answer outside it, so the room
        keeps working while the destination thinks."""
        timeout_ms = call.response_timeout_ms or rpc.DEFAULT_RESPONSE_TIMEOUT_MS

        async def send() -> tuple[str, rpc.Pending]:
            p = room.by_identity(call.destination_identity)
            if p is None:
                raise RpcError(
                    ErrorCode.NOT_FOUND, f"participant {call.destination_identity!r} is not in room"
                )
            return rpc.start(p, call.method, call.payload, timeout_ms)

        request_id, pending = await room.call(send)
        log.info("rpc request sent", room=room.name, method=call.method, request=request_id)
        result = node_pb2.RoomCommandResult()
        result.rpc.payload = await rpc.wait(request_id, pending, timeout_ms)
        return result

    def _room_empty(self, room: Room) -> None:
        self.tasks.spawn(self._close_if_still_empty(room), name=f"close-room:{room.name}")

    async def _close_if_still_empty(self, room: Room) -> None:
        await asyncio.sleep(EMPTY_ROOM_GRACE_SECONDS)
        if room.participants or self.rooms.get(room.name) is not room:
            return
        del self.rooms[room.name]
        if not self.rooms:
            self._emptied.set()
        await room.aclose()
        log.info("room closed on node", room=room.name)

    # -- load ---------------------------------------------------------------------------------------
    def stats(self) -> node_pb2.NodeStats:
        packets_in, packets_out = engine.media_rates(self.media)
        participants = sum(len(r.participants) for r in self.rooms.values())
        tracks_in = sum(len(p.published) for r in self.rooms.values() for p in r.participants.values())
        tracks_out = sum(len(p.downtracks) for r in self.rooms.values() for p in r.participants.values())
        sfu = self.config.sfu
        load = max(
            (packets_in + packets_out) / sfu.capacity_packets_per_s,
            participants / sfu.capacity_participants,
        )
        return node_pb2.NodeStats(
            node_id=self.node_id,
            region=self.config.region,
            load=min(1.0, load),
            num_rooms=len(self.rooms),
            num_participants=participants,
            num_tracks_in=tracks_in,
            num_tracks_out=tracks_out,
            started_at=self.started_at,
            updated_at=int(time.time()),
            draining=self.draining,
            cpu_load=self._cpu.load(),
        )

    async def publish_stats(self) -> None:
        await self.bus.publish(subjects.SFU_NODES, self.stats())

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.sfu.stats_interval)
            try:
                await self.publish_stats()
            except Exception as exc:
                log.warning("cannot publish node stats", error=str(exc))

    # -- sessions held (room-state reconciles them) --------------------------------------------------
    def sessions(self) -> rs.NodeSessions:
        """Every session this node holds, by room (participants waiting for a resume included)."""
        report = rs.NodeSessions(node_id=self.node_id, taken_at_ms=now_ms())
        for name, room in sorted(self.rooms.items()):
            if not room.closed:
                report.rooms.add(room_name=name, participant_sids=sorted(room.participants))
        return report

    async def _sessions(self, _: rs.NodeSessions) -> rs.NodeSessions:
        return self.sessions()

    async def _sessions_loop(self) -> None:
        """Queue a sessions report every ``sfu.sessions_interval``, behind the pending reports."""
        while True:
            await asyncio.sleep(self.config.sfu.sessions_interval)
            if not self.draining:
                self.reporter.sessions(self.sessions)

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def drain_timeout(self) -> float:
        return self.config.sfu.drain_timeout + 5.0  # moving rooms, then waiting for the rest to empty

    async def drain(self) -> None:
        """No new sessions; rooms move to other live nodes (room-state ``MoveRooms``) and their
        participants are told to reconnect, which rejoins them there; rooms that cannot move run
        until empty or ``sfu.drain_timeout``."""
        self.draining = True
        await self.publish_stats()
        if self.rooms:
            try:
                moved = await self.bus.call(
                    rpcs.MOVE_ROOMS, rs.MoveRoomsRequest(node_id=self.node_id), timeout=10.0
                )
            except BusError as exc:
                log.warning("cannot move rooms; waiting for them to empty", error=str(exc))
                moved = rs.MoveRoomsResponse()
            for name, target in moved.moved.items():
                room = self.rooms.get(name)
                if room is not None:
                    log.info("moving room", room=name, to_node=target)
                    await room.call(room.migrate)
        if self.rooms:
            self._emptied.clear()
            await wait_event(self._emptied, self.config.sfu.drain_timeout)
        if self.rooms:
            log.warning("drain timeout; closing the rooms left", rooms=len(self.rooms))

    async def aclose(self) -> None:
        sfu_metrics().unregister(self)
        for sub in self._subs:
            await sub.unsubscribe()
        for room in list(self.rooms.values()):
            await room.aclose()
        self.rooms.clear()
        try:
            await asyncio.wait_for(self.reporter.idle(), timeout=3)
        except TimeoutError:
            log.warning("room-state reports still pending at shutdown")
        await self.tasks.aclose()


class CpuMeter:
    """Share of one core this process used between calls (one per node: two nodes in one process
    each measure over their own interval)."""

    def __init__(self) -> None:
        self._last = (time.monotonic(), time.process_time())

    def load(self) -> float:
        now, cpu = time.monotonic(), time.process_time()
        wall0, cpu0 = self._last
        self._last = (now, cpu)
        return max(0.0, (cpu - cpu0) / max(now - wall0, 1e-6))
