"""Automatic dispatch from room events (durable JetStream consumer shared by every instance).

room_started: the room's configured agents, or else the automatic dispatch (agent_name "");
a JT_ROOM job each. participant_joined (not an agent): JT_PARTICIPANT jobs.
track_published (a participant's first): JT_PUBLISHER jobs. room_finished: every job ends.
"""

from __future__ import annotations

import asyncio

from google.protobuf.message import DecodeError
from livekit.protocol import agent, models

from parley.bus import Delivery
from parley.dispatch.config import DispatchConfig
from parley.dispatch.dispatches import new_dispatch
from parley.dispatch.jobs import Jobs
from parley.dispatch.scheduler import Scheduler
from parley.dispatch.store import TERMINAL, Store
from parley.observability import TaskSet, get_logger
from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent

log = get_logger("parley.dispatch.rooms")

AGENT = models.ParticipantInfo.Kind.AGENT
HANDLED = ("room_started", "participant_joined", "track_published", "room_finished")


class RoomEvents:
    """Events of one room are applied in order; different rooms proceed in parallel."""

    def __init__(self, config: DispatchConfig, store: Store, jobs: Jobs, scheduler: Scheduler) -> None:
        self._section = config.dispatch
        self._store = store
        self._jobs = jobs
        self._scheduler = scheduler
        self._queues: dict[str, asyncio.Queue[tuple[RoomEvent, Delivery]]] = {}
        self._tasks = TaskSet("dispatch.rooms")

    async def handle(self, delivery: Delivery) -> None:
        """Consumer callback: queue the event on its room's actor (which acks it when applied)."""
        event = RoomEvent()
        try:
            event.ParseFromString(delivery.data)
        except DecodeError:
            log.warning("undecodable room event", subject=delivery.subject)
            await delivery.term()
            return
        if event.event not in HANDLED:
            await delivery.ack()
            return
        room = event.room.name
        queue = self._queues.get(room)
        if queue is None:
            queue = self._queues[room] = asyncio.Queue()
            self._tasks.spawn(self._room_actor(room, queue), name=f"room-events:{room}")
        queue.put_nowait((event, delivery))

    async def _room_actor(self, room: str, queue: asyncio.Queue[tuple[RoomEvent, Delivery]]) -> None:
        try:
            while not queue.empty():
                event, delivery = queue.get_nowait()
                try:
                    await self.apply(event)
                except Exception:
                    log.exception("room event failed; redelivering", room=room, kind=event.event)
                    await delivery.nak(delay=1.0)
                    continue
                await delivery.ack()
        finally:
            self._queues.pop(room, None)

    async def aclose(self) -> None:
        await self._tasks.aclose()

    async def apply(self, event: RoomEvent) -> None:
        name = event.event
        if name == "room_started":
            await self.room_started(event)
        elif name == "participant_joined":
            await self.participant_joined(event)
        elif name == "track_published":
            await self.track_published(event)
        elif name == "room_finished":
            await self.room_finished(event)

    async def room_started(self, event: RoomEvent) -> None:
        room = event.room
        if not await self._store.first(room.name, "started", room.sid or event.id):
            return
        await self._store.put_room(room)
        existing = await self._store.dispatches(room.name)
        configured = list(event.room_config.agents)
        new = [
            new_dispatch(room.name, a.agent_name, a.metadata, a.deployment, a.attributes, a.restart_policy)
            for a in configured
        ]
        if not new and not existing:
            new.append(new_dispatch(room.name))
        for d in new:
            await self._store.put_dispatch(d)
            await self._scheduler.launch(d, agent.JobType.JT_ROOM, room, explicit=bool(d.agent_name))

    async def participant_joined(self, event: RoomEvent) -> None:
        p = event.participant
        if p.kind == AGENT or not await self._store.first(event.room.name, "joined", p.sid):
            return
        await self._launch_all(event, agent.JobType.JT_PARTICIPANT)

    async def track_published(self, event: RoomEvent) -> None:
        p = event.participant
        if p.kind == AGENT or not await self._store.first(event.room.name, "published", p.sid):
            return
        await self._launch_all(event, agent.JobType.JT_PUBLISHER)

    async def _launch_all(self, event: RoomEvent, job_type: agent.JobType) -> None:
        room = event.room if event.room.sid else await self._store.get_room(event.room.name)
        for d in await self._store.dispatches(event.room.name):
            await self._scheduler.launch(d, job_type, room, event.participant)

    async def room_finished(self, event: RoomEvent) -> None:
        name = event.room.name
        jobs = await self._store.room_jobs(name)
        for job in jobs:
            if job.state.status in TERMINAL:
                continue
            done = (
                agent.JobStatus.JS_SUCCESS
                if job.state.status == agent.JobStatus.JS_RUNNING
                else agent.JobStatus.JS_FAILED
            )
            await self._jobs.terminate(job, agent.JobStateReason.JSR_ROOM_CLOSED, done)
        await self._store.close_room(name, [j.id for j in jobs], int(self._section.room_retention))
        log.info("room closed", room=name, jobs=len(jobs))
