"""Worker connections this instance owns: registration, frames from the worker, job offers.

The edge holds the WebSocket; this instance holds the protocol state of the connection
(which offers wait for an answer) and answers every frame in order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from livekit.protocol import agent

from parley.bus import Bus, ErrorCode, RpcError, rpcs
from parley.dispatch import outbound
from parley.dispatch.config import DispatchConfig
from parley.dispatch.events import JOB_STARTED, JobEvents
from parley.dispatch.ids import WorkerID
from parley.dispatch.jobs import Jobs, now_ns
from parley.dispatch.records import WorkerRecord
from parley.dispatch.store import TERMINAL, Store
from parley.dispatch.token import agent_token, participant_identity
from parley.observability import get_logger
from parley.protocol.gen.dispatch.v1 import dispatch_pb2 as pb
from parley.protocol.ids import WORKER_PREFIX, new_id, now_ms

log = get_logger("parley.dispatch.connections")

SERVER_VERSION = "1.9.0"
"""Reported to workers as server_info.version: semver, LiveKit >= 1.8 behaviour."""
PROTOCOL = 16
AGENT_PROTOCOL = 1


@dataclass(slots=True)
class Connection:
    connection_id: str
    worker_id: WorkerID
    reply_subject: str
    record: WorkerRecord
    offers: dict[str, asyncio.Future[agent.AvailabilityResponse]] = field(default_factory=dict)


class Connections:
    def __init__(self, config: DispatchConfig, instance: str, bus: Bus, store: Store, jobs: Jobs) -> None:
        self._config = config
        self._section = config.dispatch
        self._instance = instance
        self._bus = bus
        self._store = store
        self._jobs = jobs
        self._events: JobEvents = jobs.events
        self._by_conn: dict[str, Connection] = {}
        self._by_worker: dict[str, Connection] = {}

    def owns(self, worker_id: str) -> bool:
        return worker_id in self._by_worker

    def forget(self, worker_id: str) -> None:
        conn = self._by_worker.pop(worker_id, None)
        if conn is not None:
            self._by_conn.pop(conn.connection_id, None)
            for fut in conn.offers.values():
                if not fut.done():
                    fut.cancel()

    # registration ------------------------------------------------------------------------------
    async def open(self, req: pb.WorkerOpenRequest) -> pb.WorkerOpenResponse:
        msg = agent.WorkerMessage()
        try:
            msg.ParseFromString(req.frame)
        except DecodeError as exc:
            raise RpcError(ErrorCode.MALFORMED, "first frame is not a WorkerMessage") from exc
        if msg.WhichOneof("message") != "register":
            raise RpcError(ErrorCode.INVALID_ARGUMENT, "the first worker message must be register")
        if req.api_key not in self._config.keys:
            raise RpcError(ErrorCode.UNAUTHENTICATED, "unknown API key")
        reg = msg.register
        worker_id = WorkerID(new_id(WORKER_PREFIX))
        rec = WorkerRecord(
            worker_id=worker_id,
            agent_name=reg.agent_name,
            namespace=reg.namespace,
            job_type=reg.type,
            deployment=reg.deployment,
            version=reg.version,
            permission=reg.allowed_permissions,
            api_key=req.api_key,
            owner=self._instance,
            reply_subject=req.reply_subject,
            connection_id=req.connection_id,
            updated_ms=now_ms(),
        )
        conn = Connection(req.connection_id, worker_id, req.reply_subject, rec)
        self._by_conn[req.connection_id] = conn
        self._by_worker[worker_id] = conn
        response = agent.ServerMessage()
        response.register.worker_id = worker_id
        info = response.register.server_info
        info.version = SERVER_VERSION
        info.protocol = PROTOCOL
        info.agent_protocol = AGENT_PROTOCOL
        info.region = self._config.region
        info.node_id = self._instance
        # The register answer is the first server frame; only then may offers reach the worker.
        await outbound.send(self._bus, req.reply_subject, req.connection_id, response)
        await self._store.put_worker(rec)
        log.info(
            "worker registered",
            worker=worker_id,
            agent_name=reg.agent_name,
            job_type=agent.JobType.Name(reg.type),
            version=reg.version,
            edge=req.edge_id,
        )
        return pb.WorkerOpenResponse(
            worker_id=worker_id, owner_subject=rpcs.WORKER_FRAME.subject(self._instance)
        )

    # frames --------------------------------------------------------------------------------------
    async def frame(self, req: pb.WorkerFrame) -> pb.WorkerFrameAck:
        conn = self._by_conn.get(req.connection_id)
        if conn is None:
            raise RpcError(ErrorCode.NOT_FOUND, "unknown worker connection")
        if req.closed:
            self.forget(conn.worker_id)
            await self._jobs.worker_lost(conn.worker_id, self._section.redispatch_grace)
            return pb.WorkerFrameAck()
        msg = agent.WorkerMessage()
        try:
            msg.ParseFromString(req.frame)
        except DecodeError as exc:
            raise RpcError(ErrorCode.MALFORMED, "not a WorkerMessage") from exc
        which = msg.WhichOneof("message")
        if which == "availability":
            fut = conn.offers.get(msg.availability.job_id)
            if fut is not None and not fut.done():
                fut.set_result(msg.availability)
        elif which == "update_worker":
            u = msg.update_worker
            await self._store.update_status(conn.worker_id, u.status, u.load, u.job_count, now_ms())
        elif which == "update_job":
            await self._update_job(conn, msg.update_job)
        elif which == "ping":
            pong = agent.ServerMessage()
            pong.pong.last_timestamp = msg.ping.timestamp
            pong.pong.timestamp = now_ms()
            await outbound.send(self._bus, conn.reply_subject, conn.connection_id, pong)
        elif which == "migrate_job":
            await self._migrate(conn, list(msg.migrate_job.job_ids))
        else:
            log.info("worker message ignored", worker=conn.worker_id, message=which)
        return pb.WorkerFrameAck()

    async def _update_job(self, conn: Connection, update: agent.UpdateJobStatus) -> None:
        got = await self._store.get_job(update.job_id)
        if got is None:
            return
        job, _ = got
        if job.state.status in TERMINAL or job.state.worker_id != conn.worker_id:
            return
        if update.status in TERMINAL:
            await self._jobs.end(job, update.status, update.error)
            return
        job.state.status = update.status
        job.state.error = update.error
        job.state.updated_at = now_ns()
        await self._store.put_job(job)

    async def _migrate(self, conn: Connection, job_ids: list[str]) -> None:
        """A reconnected worker still runs these jobs: they stay with it."""
        for jid in job_ids:
            got = await self._store.get_job(jid)
            if got is None or got[0].state.status in TERMINAL:
                continue
            job = got[0]
            job.state.worker_id = conn.worker_id
            job.state.status = agent.JobStatus.JS_RUNNING
            job.state.updated_at = now_ns()
            await self._store.put_job(job)
            await self._store.attach_job(conn.worker_id, jid)
            await self._store.unschedule(jid)
            log.info("job migrated", room=job.room.name, job=jid, worker=conn.worker_id)

    # offers --------------------------------------------------------------------------------------
    async def offer(self, req: pb.OfferJobRequest) -> pb.OfferJobResponse:
        conn = self._by_worker.get(req.worker_id)
        if conn is None:
            return pb.OfferJobResponse(accepted=False, reason="worker is gone")
        job = agent.Job()
        job.CopyFrom(req.job)
        fut: asyncio.Future[agent.AvailabilityResponse] = asyncio.get_running_loop().create_future()
        conn.offers[job.id] = fut
        ask = agent.ServerMessage()
        ask.availability.job.CopyFrom(job)
        ask.availability.resuming = req.resuming
        try:
            await outbound.send(self._bus, conn.reply_subject, conn.connection_id, ask)
            answer = await asyncio.wait_for(fut, self._section.availability_timeout)
        except TimeoutError:
            return pb.OfferJobResponse(accepted=False, reason="no availability answer in time")
        except asyncio.CancelledError:
            if asyncio.current_task() is not None and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            return pb.OfferJobResponse(accepted=False, reason="worker is gone")
        finally:
            conn.offers.pop(job.id, None)
        if not answer.available:
            return pb.OfferJobResponse(accepted=False, terminate=answer.terminate, reason="declined")
        return await self._assign(conn, job, answer)

    async def _assign(
        self, conn: Connection, job: agent.Job, answer: agent.AvailabilityResponse
    ) -> pb.OfferJobResponse:
        rec = conn.record
        current = await self._store.get_job(job.id)
        if current is None or current[0].state.status in TERMINAL:
            return pb.OfferJobResponse(accepted=False, reason="job or worker ended meanwhile")
        secret = self._config.keys.get(rec.api_key)
        if secret is None:
            return pb.OfferJobResponse(accepted=False, reason="the worker's API key is gone")
        ns = now_ns()
        job.state.status = agent.JobStatus.JS_RUNNING
        job.state.worker_id = conn.worker_id
        job.state.participant_identity = participant_identity(job, answer)
        job.state.started_at = ns
        job.state.updated_at = ns
        job.state.error = ""
        token = agent_token(job, answer, rec.permission, rec.api_key, secret, self._section.agent_token_ttl)
        await self._store.assign(job, conn.worker_id)
        assignment = agent.ServerMessage()
        assignment.assignment.job.CopyFrom(job)
        assignment.assignment.token = token
        await outbound.send(self._bus, conn.reply_subject, conn.connection_id, assignment)
        log.info(
            "job assigned",
            room=job.room.name,
            job=job.id,
            worker=conn.worker_id,
            participant=job.state.participant_identity,
        )
        await self._events.publish(JOB_STARTED, job)
        return pb.OfferJobResponse(accepted=True, job=job)
