"""One room on this node: an actor (one serial queue) that owns every state change.

PC events, client signals and room commands are all submitted here; each runs to completion
before the next, and an exception in one never stops the queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiortc import RTCDataChannel, RTCPeerConnection
from livekit.protocol import models, rtc

from parley.bus import Bus, ErrorCode, RpcError
from parley.observability import TaskSet, get_logger
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.protocol.gen.turn.v1 import turn_pb2
from parley.sfu import data_router, engine, negotiation, publish, single_pc, subscriptions
from parley.sfu.config import SfuConfig
from parley.sfu.connection_quality import ConnectionQualityMonitor
from parley.sfu.dynacast import Dynacast, Handle
from parley.sfu.join_response import build_join_response, build_reconnect_response
from parley.sfu.outbox import SignalOutbox
from parley.sfu.participant import Participant
from parley.sfu.speakers import SpeakerTracker
from parley.sfu.state_reporter import StateReporter
from parley.sfu.taps import Taps

log = get_logger("parley.sfu.room")
PC_CLOSE_TIMEOUT_S = 5.0
"""``aclose`` waits this long for its participants' peer connections to finish closing."""
T = TypeVar("T")
Job = Callable[[], Awaitable[Any]]


@dataclass(slots=True)
class RoomHost:
    """What a room needs from its node."""

    bus: Bus
    config: SfuConfig
    node_id: str
    reporter: StateReporter
    on_empty: Callable[[Room], None]
    media: engine.MediaContext = field(default_factory=engine.MediaContext)
    """The node's media engine context (its up and down tracks are built with it)."""


class Room:
    def __init__(self, host: RoomHost, info: models.Room) -> None:
        self.host = host
        self.info = models.Room()
        self.info.CopyFrom(info)
        self.participants: dict[str, Participant] = {}
        self.tasks = TaskSet(f"room.{info.name}")
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any] | None]] = asyncio.Queue()
        self._speakers = SpeakerTracker(host.config.sfu.speaker_threshold)
        self.taps = Taps(self)
        """Plain-RTP copies of tracks for egress (``taps.py``); not subscribers."""
        self.dynacast = Dynacast(
            self, host.config.sfu.dynacast_pause_delay, self.schedule, pinned=self.taps.wants_top_layer
        )
        self._quality = ConnectionQualityMonitor(publishing=self._publishing)
        self.closed = False
        self._pc_closes: set[asyncio.Task[None]] = set()
        """Peer connection closes started by ``remove``; ``aclose`` lets them finish."""
        self.tasks.spawn(self._run(), name=f"room:{info.name}")
        self.tasks.spawn(self._speaker_loop(), name=f"speakers:{info.name}")
        self.tasks.spawn(self._quality_loop(), name=f"connection-quality:{info.name}")

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def reporter(self) -> StateReporter:
        return self.host.reporter

    @property
    def media(self) -> engine.MediaContext:
        return self.host.media

    # -- actor ------------------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        self._queue.put_nowait((job, None))

    async def call(self, job: Callable[[], Awaitable[T]]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return await future

    async def _run(self) -> None:
        while True:
            job, future = await self._queue.get()
            try:
                result = await job()
            except Exception as exc:
                log.exception("room operation failed", room=self.name)
                if future is not None and not future.done():
                    future.set_exception(exc)
            else:
                if future is not None and not future.done():
                    future.set_result(result)
            try:
                await self._flush_negotiations()
            except Exception:
                log.exception("renegotiation failed", room=self.name)

    async def _flush_negotiations(self) -> None:
        for p in list(self.participants.values()):
            if p.single_pc:
                if single_pc.wants_offer(p):
                    single_pc.request_offer(p)
                continue
            if p.sub_negotiation.needs_offer and not p.sub_negotiation.awaiting_answer:
                try:
                    await negotiation.send_subscriber_offer(p)
                except Exception:
                    log.exception("subscriber offer failed", room=self.name, participant=p.sid)

    async def _speaker_loop(self) -> None:
        while True:
            await asyncio.sleep(self.host.config.sfu.speaker_interval)
            changed = self._speakers.evaluate(self.participants.values())
            if changed is not None:
                message = rtc.SignalResponse(speakers_changed=changed)
                for p in list(self.participants.values()):
                    p.send(message)

    async def _quality_loop(self) -> None:
        """connection_quality every ``sfu.connection_quality_interval`` (Go connectionQualityWorker);
        also re-evaluates dynacast, in case a subscriber's layer request changed without a hook."""
        while True:
            await asyncio.sleep(self.host.config.sfu.connection_quality_interval)
            try:
                self.dynacast.refresh_all()
                messages = self._quality.evaluate(list(self.participants.values()), time.monotonic())
            except Exception:
                log.exception("connection quality evaluation failed", room=self.name)
                continue
            for p, message in messages:
                p.send(message)

    def _publishing(self, track_sid: str) -> bool:
        """Dynacast has not switched every layer of this video track off."""
        committed = self.dynacast.committed(track_sid)
        return committed is None or committed >= 0

    def schedule(self, delay: float, fn: Callable[[], None]) -> Handle:
        """Run ``fn`` in the actor after ``delay`` seconds (cancelled by the returned handle)."""

        async def job() -> None:
            fn()

        return asyncio.get_running_loop().call_later(delay, lambda: None if self.closed else self.submit(job))

    # -- lookups ----------------------------------------------------------------------------------
    def by_identity(self, identity: str) -> Participant | None:
        return next((p for p in self.participants.values() if p.identity == identity), None)

    def by_connection(self, connection_id: str) -> Participant | None:
        return next((p for p in self.participants.values() if p.connection_id == connection_id), None)

    def broadcast_update(self, p: Participant, *, include_self: bool = True) -> None:
        info = models.ParticipantInfo()
        info.CopyFrom(p.info)
        message = rtc.SignalResponse(update=rtc.ParticipantUpdate(participants=[info]))
        for other in list(self.participants.values()):
            if other is p:
                if include_self:
                    other.send(message)
            elif not p.hidden:
                other.send(message)

    # -- join -------------------------------------------------------------------------------------
    async def join(self, request: relay_pb2.StartSessionRequest, ice: turn_pb2.IceServersResponse) -> None:
        old = self.by_identity(request.participant.identity)
        if old is not None:
            await self.remove(old, models.DisconnectReason.DUPLICATE_IDENTITY)
        info = models.ParticipantInfo()
        info.CopyFrom(request.participant)
        info.state = models.ParticipantInfo.State.JOINED
        info.version = max(info.version, 1)
        if not info.client_protocol:
            info.client_protocol = request.client_info.client_protocol
        outbox = SignalOutbox(self.host.bus, request.edge_id, request.connection_id, self.tasks)
        p = Participant(
            info=info,
            outbox=outbox,
            edge_id=request.edge_id,
            auto_subscribe=request.auto_subscribe,
            protocol=request.protocol,
            client_info=request.client_info,
            single_pc=request.single_peer_connection,
        )
        others = list(self.participants.values())
        self.participants[p.sid] = p
        self.info.num_participants = len(self.participants)
        join = build_join_response(
            room=self.info,
            participant=p,
            others=others,
            ice=ice,
            version=self.host.config.sfu.server_version,
            region=self.host.config.region,
            node_id=self.host.node_id,
            resume=self.host.config.sfu.resume_window > 0,
        )
        p.send(rtc.SignalResponse(join=join))
        self.broadcast_update(p, include_self=False)
        if p.single_pc:
            self.ensure_publisher_pc(p)
            subscriptions.reconcile(self, p)  # the first answer carries the room's tracks
            if request.HasField("publisher_offer"):
                offer = rtc.SessionDescription()
                offer.CopyFrom(request.publisher_offer)
                self.submit(lambda: single_pc.handle_offer(self, p, offer))
        elif p.subscriber_primary:
            self.ensure_subscriber_pc(p)
            p.sub_negotiation.needs_offer = True
        p.join_timer = self.tasks.spawn(self._join_deadline(p), name=f"join-deadline:{p.sid}")
        log.info(
            "participant joined",
            room=self.name,
            participant=p.sid,
            identity=p.identity,
            path="v1" if p.single_pc else "v0",
        )

    # -- signalling continuity (resume) -----------------------------------------------------------
    async def signal_lost(self, p: Participant) -> None:
        """Its signalling connection closed without a leave: keep the session (media and data keep
        flowing) for ``sfu.resume_window`` seconds for the client to resume through any edge; frames
        meanwhile are dropped (the client re-syncs on resume). A participant that never connected
        media, or a node with resuming off, removes it at once (SIGNAL_CLOSE)."""
        window = self.host.config.sfu.resume_window
        if p.closed:
            return
        if window <= 0 or not p.active:
            await self.remove(p, models.DisconnectReason.SIGNAL_CLOSE, send_leave=False)
            return
        p.outbox.close()
        p.signal_lost_at = time.monotonic()
        connection = p.connection_id
        p.resume_timer = self.tasks.spawn(
            self._resume_deadline(p, connection, window), name=f"resume-deadline:{p.sid}"
        )
        log.info("signal lost; waiting for a resume", room=self.name, participant=p.sid, window_s=window)

    async def _resume_deadline(self, p: Participant, connection_id: str, window: float) -> None:
        await asyncio.sleep(window)

        async def expire() -> None:
            if not p.closed and p.signal_lost_at is not None and p.connection_id == connection_id:
                log.info("no resume in time; removing", room=self.name, participant=p.sid)
                await self.remove(p, models.DisconnectReason.SIGNAL_CLOSE, send_leave=False)

        self.submit(expire)

    async def resume(self, request: relay_pb2.ResumeSessionRequest, ice: turn_pb2.IceServersResponse) -> None:
        """Rebind ``request.participant_sid`` to a new connection (any edge): ReconnectResponse first,
        then everyone's current state. Raises ``RpcError`` NOT_FOUND / PERMISSION_DENIED."""
        p = self.participants.get(request.participant_sid)
        if p is None or p.closed:
            raise RpcError(ErrorCode.NOT_FOUND, "no such session on this node")
        if p.identity != request.identity:
            raise RpcError(ErrorCode.PERMISSION_DENIED, "the session belongs to another identity")
        if p.resume_timer is not None and p.resume_timer is not asyncio.current_task():
            p.resume_timer.cancel()
        p.resume_timer = None
        p.outbox.close()  # the old connection, if its edge still holds it, is closed
        p.outbox = SignalOutbox(self.host.bus, request.edge_id, request.connection_id, self.tasks)
        p.edge_id = request.edge_id
        gap = time.monotonic() - p.signal_lost_at if p.signal_lost_at is not None else 0.0
        p.signal_lost_at = None
        reconnect = build_reconnect_response(
            participant=p,
            ice=ice,
            version=self.host.config.sfu.server_version,
            region=self.host.config.region,
            node_id=self.host.node_id,
        )
        p.send(rtc.SignalResponse(reconnect=reconnect))
        if not p.single_pc and p.sub_pc is not None and not p.sub_negotiation.awaiting_answer:
            # the subscriber PC is server-offered: its ICE restart is ours (the client restarts its
            # publisher PC itself); the restart offer goes out when this job ends
            try:
                await engine.restart_ice(p.sub_pc)
                p.sub_negotiation.needs_offer = True
            except engine.IceRestartError as exc:
                log.info("no subscriber ICE restart", room=self.name, participant=p.sid, error=str(exc))
        everyone = [o.info for o in self.participants.values() if o is p or not o.hidden]
        p.send(rtc.SignalResponse(update=rtc.ParticipantUpdate(participants=everyone)))
        p.send(rtc.SignalResponse(room_update=rtc.RoomUpdate(room=self.info)))
        log.info(
            "participant resumed",
            room=self.name,
            participant=p.sid,
            edge=request.edge_id,
            reason=int(request.reconnect_reason),
            signal_gap_s=round(gap, 3),
        )

    # -- peer connections -------------------------------------------------------------------------
    def ensure_subscriber_pc(self, p: Participant) -> RTCPeerConnection:
        if p.sub_pc is not None:
            return p.sub_pc
        pc = engine.new_peer_connection(self.media)
        p.sub_pc = pc
        reliable = pc.createDataChannel(data_router.RELIABLE, ordered=True)
        lossy = pc.createDataChannel(data_router.LOSSY, ordered=False, maxRetransmits=0)
        for channel in (reliable, lossy):
            p.sub_channels[channel.label] = channel
            self._watch_channel(p, channel)
        self._watch_pc(p, pc, primary=p.subscriber_primary)
        return pc

    def ensure_publisher_pc(self, p: Participant) -> RTCPeerConnection:
        if p.pub_pc is not None:
            return p.pub_pc
        pc = engine.new_peer_connection(self.media)
        p.pub_pc = pc

        @pc.on("datachannel")  # type: ignore[untyped-decorator]
        def on_datachannel(channel: RTCDataChannel) -> None:
            p.pub_channels[channel.label] = channel
            self._watch_channel(p, channel)

        self._watch_pc(p, pc, primary=not p.subscriber_primary)
        return pc

    def _watch_channel(self, p: Participant, channel: RTCDataChannel) -> None:
        label = channel.label

        @channel.on("open")  # type: ignore[untyped-decorator]
        def on_open() -> None:
            p.flush_data()

        if channel.readyState == "open":
            p.flush_data()

        @channel.on("message")  # type: ignore[untyped-decorator]
        def on_message(message: bytes | str) -> None:
            if not p.closed:
                data_router.route(p, self.participants.values(), label, message)

    def _watch_pc(self, p: Participant, pc: RTCPeerConnection, *, primary: bool) -> None:
        @pc.on("connectionstatechange")  # type: ignore[untyped-decorator]
        def on_state() -> None:
            state = pc.connectionState
            if state == "connected" and primary:
                self.submit(lambda: self._activate(p))
            elif state == "failed":
                self.submit(lambda: self._media_failed(p, pc))

    async def _media_failed(self, p: Participant, pc: RTCPeerConnection) -> None:
        """The media path died (consent checks failed). A connected participant gets
        ``sfu.resume_window`` seconds for an ICE restart (its SDK resumes and restarts ICE) before it
        is removed; one that never connected, or a closed transport, is removed at once."""
        if p.closed:
            return
        link = engine.ice_link(pc)
        window = self.host.config.sfu.resume_window
        if window <= 0 or not p.active or link.state != "disconnected":
            await self.remove(p, models.DisconnectReason.CONNECTION_TIMEOUT)
            return
        log.info("media path lost; waiting for an ICE restart", room=self.name, participant=p.sid)
        self.tasks.spawn(self._await_ice_restart(p, link, window), name=f"ice-restart-wait:{p.sid}")

    async def _await_ice_restart(self, p: Participant, link: engine.IceLink, window: float) -> None:
        if await link.wait_connected(window, min_generation=link.generation + 1):
            log.info("media path restored by an ICE restart", room=self.name, participant=p.sid)
            return

        async def expire() -> None:
            if not p.closed and link.state != "connected":
                await self.remove(p, models.DisconnectReason.CONNECTION_TIMEOUT)

        self.submit(expire)

    async def _join_deadline(self, p: Participant) -> None:
        """A participant that never connects media is removed (Go: not ACTIVE in time)."""
        await asyncio.sleep(self.host.config.sfu.join_timeout)
        self.submit(lambda: self._abort_if_inactive(p))

    async def _abort_if_inactive(self, p: Participant) -> None:
        if p.active or p.closed:
            return
        log.info("participant never connected media; removing", room=self.name, participant=p.sid)
        await self.remove(p, models.DisconnectReason.JOIN_FAILURE)

    async def _activate(self, p: Participant) -> None:
        if p.active or p.closed:
            return
        p.active = True
        _cancel_timer(p)
        p.info.state = models.ParticipantInfo.State.ACTIVE
        p.bump()
        self.broadcast_update(p)
        self.reporter.active(self.name, p.sid)
        subscriptions.reconcile(self, p)
        log.info("participant active", room=self.name, participant=p.sid)

    # -- leave ------------------------------------------------------------------------------------
    async def remove(
        self,
        p: Participant,
        reason: int,
        *,
        send_leave: bool = True,
        action: int = rtc.LeaveRequest.Action.DISCONNECT,
    ) -> None:
        if p.closed:
            return
        if send_leave:
            leave = rtc.LeaveRequest(
                reason=reason,  # type: ignore[arg-type]
                action=action,  # type: ignore[arg-type]
                can_reconnect=action == rtc.LeaveRequest.Action.RECONNECT,  # older SDKs read this
            )
            p.outbox.close(rtc.SignalResponse(leave=leave))
        else:
            p.outbox.close()
        for sid in list(p.published):
            self.taps.end_track(sid, "participant left")
            publish.unpublish(self, p, sid, notify=False)
        for sid in list(p.downtracks):
            subscriptions.unsubscribe(self, p, sid)
        p.closed = True
        _cancel_timer(p)
        self.participants.pop(p.sid, None)
        self.info.num_participants = len(self.participants)
        p.info.state = models.ParticipantInfo.State.DISCONNECTED
        p.info.disconnect_reason = reason  # type: ignore[assignment]
        p.sync_tracks()
        p.bump()
        self.broadcast_update(p, include_self=False)
        self.reporter.left(self.name, p.sid, reason)
        for pc in (p.pub_pc, p.sub_pc):
            if pc is not None:
                closing = self.tasks.spawn(pc.close(), name=f"pc-close:{p.sid}")
                self._pc_closes.add(closing)
                closing.add_done_callback(self._pc_closes.discard)
        log.info("participant left", room=self.name, participant=p.sid, reason=int(reason))
        if not self.participants:
            self.host.on_empty(self)

    async def migrate(self) -> None:
        """The room moved to another node: every participant is told to reconnect (a full
        reconnect: the SDKs rejoin with the same identity on the room's new node, republish and
        resubscribe, reporting reconnecting/reconnected, never disconnected). Its taps end (BYE): their
        egress workers see the source close, as when a track goes."""
        self.taps.close("room migrated")
        for p in list(self.participants.values()):
            await self.remove(p, models.DisconnectReason.MIGRATION, action=rtc.LeaveRequest.Action.RECONNECT)

    async def aclose(self) -> None:
        self.closed = True
        self.taps.close("room closed")
        for p in list(self.participants.values()):
            await self.remove(p, models.DisconnectReason.SERVER_SHUTDOWN)
        self.dynacast.close()
        await self._finish_pc_closes()
        await self.tasks.aclose()

    async def _finish_pc_closes(self) -> None:
        """Wait (bounded by ``PC_CLOSE_TIMEOUT_S``) for the peer connection closes ``remove`` started,
        so that closing the room's tasks does not cancel them half way (sockets and DTLS left open)."""
        pending = set(self._pc_closes)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=PC_CLOSE_TIMEOUT_S)
        if late:
            log.warning("peer connections still closing at room close", room=self.name, pending=len(late))


def _cancel_timer(p: Participant) -> None:
    for timer in (p.join_timer, p.resume_timer):
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
    p.join_timer = p.resume_timer = None
