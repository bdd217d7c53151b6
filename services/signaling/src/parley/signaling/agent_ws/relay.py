"""The edge side of the worker protocol: one WebSocket per worker, every frame relayed.

Worker -> dispatch: the first frame (register) opens the connection at whichever dispatch
instance answers (it owns the connection from then on); every further frame is a request
to that owner, one at a time, so the worker's order is kept. An owner that no longer
answers closes the socket: the worker reconnects and registers again (migrate_job keeps
its running jobs). Dispatch -> worker: ServerFrame messages on this edge's agent subject,
written to the socket in arrival order by the connection's writer.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web
from google.protobuf.message import DecodeError

from parley.auth import AuthError, Claims, bearer_token
from parley.bus import BusError, Delivery, ErrorCode, RpcError, Subscription, rpcs, subjects
from parley.observability import TaskSet, cancel_and_wait, get_logger
from parley.protocol.gen.dispatch.v1 import dispatch_pb2 as pb
from parley.signaling.agent_ws.errors import RegisterTimeout, RelayUnavailable
from parley.signaling.edge import Edge

log = get_logger("parley.signaling.agent_ws")

REGISTER_TIMEOUT = 10.0
"""Seconds a worker has to send its register frame (Go allows 10 s)."""
RELAY_TIMEOUT = 10.0
HEARTBEAT = 30.0


@dataclass(slots=True)
class _Outgoing:
    frame: bytes
    close: bool = False


@dataclass(slots=True)
class AgentConnection:
    connection_id: str
    ws: web.WebSocketResponse
    queue: asyncio.Queue[_Outgoing] = field(default_factory=asyncio.Queue)
    worker_id: str = ""
    owner: str = ""
    """The dispatch instance holding this worker (from ``WorkerOpenResponse.owner_subject``)."""


class AgentRelay:
    def __init__(self, edge: Edge) -> None:
        self._edge = edge
        self._bus = edge.bus
        self._subject = subjects.edge_agent(edge.edge_id)
        self._conns: dict[str, AgentConnection] = {}
        self._sub: Subscription | None = None
        self._tasks = TaskSet("signaling.agent_ws")

    async def start(self) -> None:
        self._sub = await self._bus.subscribe(self._subject, self._on_server_frame)

    async def aclose(self) -> None:
        for conn in list(self._conns.values()):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
        if self._sub is not None:
            await self._sub.unsubscribe()
        await self._tasks.aclose()

    # dispatch -> worker ----------------------------------------------------------------------
    async def _on_server_frame(self, delivery: Delivery) -> None:
        frame = pb.ServerFrame()
        try:
            frame.ParseFromString(delivery.data)
        except DecodeError:
            log.warning("undecodable server frame for an agent connection")
            return
        conn = self._conns.get(frame.connection_id)
        if conn is not None:
            conn.queue.put_nowait(_Outgoing(frame.frame, frame.close))

    async def _writer(self, conn: AgentConnection) -> None:
        while True:
            out = await conn.queue.get()
            if out.frame and not conn.ws.closed:
                await conn.ws.send_bytes(out.frame)
            if out.close:
                await conn.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"closed by server")
                return

    # the socket ------------------------------------------------------------------------------
    def _authorize(self, request: web.Request) -> Claims:
        try:
            token = bearer_token(request.headers.get("Authorization")) or request.query.get("access_token")
            claims = self._edge.verifier.verify(token)
        except AuthError as exc:
            raise web.HTTPUnauthorized(text=str(exc)) from exc
        if not claims.video.flag("agent"):
            raise web.HTTPUnauthorized(text="permissions denied")
        return claims

    async def handle(self, request: web.Request) -> web.StreamResponse:
        claims = self._authorize(request)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPBadRequest(text="expected a WebSocket upgrade")
        if self._edge.draining:
            raise web.HTTPServiceUnavailable(text="edge is draining")
        ws = web.WebSocketResponse(
            max_msg_size=self._edge.config.signaling.max_frame_bytes, autoping=True, heartbeat=HEARTBEAT
        )
        await ws.prepare(request)
        conn = AgentConnection(f"AWC_{uuid.uuid4().hex[:16]}", ws)
        self._conns[conn.connection_id] = conn
        writer = self._tasks.spawn(self._writer(conn), name=f"agent-writer:{conn.connection_id}")
        try:
            await self._open(conn, claims, request.remote or "")
            await self._relay(conn)
        except (RelayUnavailable, RegisterTimeout) as exc:
            log.warning("agent connection closed", connection=conn.connection_id, reason=str(exc))
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=str(exc).encode()[:120])
        finally:
            self._conns.pop(conn.connection_id, None)
            if conn.owner:
                await self._tell_closed(conn)
            if not ws.closed:
                # let frames already queued (e.g. the last termination) go out first
                conn.queue.put_nowait(_Outgoing(b"", close=True))
                try:
                    await asyncio.wait_for(asyncio.shield(writer), 1.0)
                except Exception:
                    pass
            await cancel_and_wait(writer)
        return ws

    async def _open(self, conn: AgentConnection, claims: Claims, remote: str) -> None:
        try:
            first = await conn.ws.receive(timeout=REGISTER_TIMEOUT)
        except TimeoutError as exc:
            raise RegisterTimeout("no register frame") from exc
        if first.type != WSMsgType.BINARY:
            raise RegisterTimeout("the first frame is not a binary register frame")
        request = pb.WorkerOpenRequest(
            connection_id=conn.connection_id,
            edge_id=self._edge.edge_id,
            reply_subject=self._subject,
            frame=first.data,
            api_key=claims.api_key,
            remote_address=remote,
        )
        try:
            opened = await self._bus.call(rpcs.WORKER_OPEN, request, timeout=RELAY_TIMEOUT)
        except BusError as exc:
            raise RelayUnavailable(f"cannot register: {exc}") from exc
        try:
            conn.owner = rpcs.WORKER_FRAME.topic_of(opened.owner_subject)
        except ValueError as exc:
            raise RelayUnavailable(f"cannot register: {exc}") from exc
        conn.worker_id = opened.worker_id
        log.info("agent worker connected", connection=conn.connection_id, worker=conn.worker_id)

    async def _relay(self, conn: AgentConnection) -> None:
        async for msg in conn.ws:
            if msg.type == WSMsgType.BINARY:
                frame = pb.WorkerFrame(
                    connection_id=conn.connection_id, worker_id=conn.worker_id, frame=msg.data
                )
                try:
                    await self._bus.call(rpcs.WORKER_FRAME, frame, topic=conn.owner, timeout=RELAY_TIMEOUT)
                except RpcError as exc:
                    if exc.code == ErrorCode.NOT_FOUND:
                        raise RelayUnavailable("dispatch forgot this connection") from exc
                    log.warning("worker frame refused", connection=conn.connection_id, error=str(exc))
                except BusError as exc:
                    raise RelayUnavailable(f"dispatch owner unavailable: {exc}") from exc
            elif msg.type == WSMsgType.ERROR:
                break

    async def _tell_closed(self, conn: AgentConnection) -> None:
        frame = pb.WorkerFrame(connection_id=conn.connection_id, worker_id=conn.worker_id, closed=True)
        try:
            await self._bus.call(rpcs.WORKER_FRAME, frame, topic=conn.owner, timeout=RELAY_TIMEOUT)
        except BusError as exc:
            log.info("could not report a closed worker", connection=conn.connection_id, error=str(exc))
        log.info("agent worker disconnected", connection=conn.connection_id, worker=conn.worker_id)
