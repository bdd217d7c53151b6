"""LiveKit's AgentDispatchService over the bus (the edge checks grants and relays here)."""

from __future__ import annotations

from livekit.protocol import agent, agent_dispatch, models, room

from parley.bus import Bus, BusError, rpcs
from parley.dispatch.dispatches import new_dispatch
from parley.dispatch.errors import invalid, not_found
from parley.dispatch.jobs import Jobs, now_ns
from parley.dispatch.scheduler import Scheduler
from parley.dispatch.store import Store
from parley.observability import get_logger

log = get_logger("parley.dispatch.api")

ROOM_STATE_TIMEOUT = 5.0


class DispatchApi:
    def __init__(self, bus: Bus, store: Store, jobs: Jobs, scheduler: Scheduler) -> None:
        self._bus = bus
        self._store = store
        self._jobs = jobs
        self._scheduler = scheduler

    async def create_dispatch(
        self, req: agent_dispatch.CreateAgentDispatchRequest
    ) -> agent_dispatch.AgentDispatch:
        if not req.room:
            raise invalid("room is required")
        d = new_dispatch(
            req.room, req.agent_name, req.metadata, req.deployment, req.attributes, req.restart_policy
        )
        await self._store.put_dispatch(d)
        the_room = await self._ensure_room(req.room)
        await self._scheduler.launch(d, agent.JobType.JT_ROOM, the_room, explicit=True)
        log.info("dispatch created", room=req.room, dispatch=d.id, agent_name=d.agent_name)
        return d

    async def _ensure_room(self, name: str) -> models.Room:
        """Create the room as LiveKit does for CreateDispatch (room-state; its room_started
        then sees this dispatch and adds no automatic one)."""
        try:
            created = await self._bus.call(
                rpcs.CREATE_ROOM, room.CreateRoomRequest(name=name), timeout=ROOM_STATE_TIMEOUT
            )
        except BusError as exc:
            log.warning("cannot create the dispatch's room", room=name, error=str(exc))
            return await self._store.get_room(name)
        await self._store.put_room(created)
        return created

    async def delete_dispatch(
        self, req: agent_dispatch.DeleteAgentDispatchRequest
    ) -> agent_dispatch.AgentDispatch:
        if not req.room or not req.dispatch_id:
            raise invalid("room and dispatch_id are required")
        found = [d for d in await self._store.dispatches(req.room) if d.id == req.dispatch_id]
        if not found:
            raise not_found("dispatch not found")
        d = found[0]
        await self._store.remove_dispatch(req.room, d.id)  # type: ignore[arg-type]
        for job in await self._store.room_jobs(req.room):
            if job.dispatch_id == d.id:
                await self._jobs.terminate(
                    job, agent.JobStateReason.JSR_DISPATCH_DELETED, agent.JobStatus.JS_SUCCESS
                )
        d.state.deleted_at = now_ns()
        log.info("dispatch deleted", room=req.room, dispatch=d.id)
        return d

    async def list_dispatch(
        self, req: agent_dispatch.ListAgentDispatchRequest
    ) -> agent_dispatch.ListAgentDispatchResponse:
        if not req.room:
            raise invalid("room is required")
        dispatches = [
            d
            for d in await self._store.dispatches(req.room)
            if not req.dispatch_id or d.id == req.dispatch_id
        ]
        jobs = await self._store.room_jobs(req.room) if dispatches else []
        for d in dispatches:
            d.state.jobs.extend(j for j in jobs if j.dispatch_id == d.id)
        return agent_dispatch.ListAgentDispatchResponse(agent_dispatches=dispatches)
