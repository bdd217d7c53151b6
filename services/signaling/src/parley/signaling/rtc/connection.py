"""One client WebSocket after the upgrade: reads client frames, relays them, writes server frames.

Keepalives (``ping``/``ping_req``) are answered here; everything else goes to the SFU node as a
ClientSignal. A frame that is not a SignalRequest closes the socket with 1007 and a reason; requests
over LiveKit's limits, and bursts of empty frames, are handled as ``limits`` describes. A write to a
socket that is already closing ends the writer quietly (the reader sees the close and ends the
connection).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from livekit.protocol import rtc

from parley.auth import Claims
from parley.observability import TaskSet, get_logger
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.protocol.ids import now_ms
from parley.signaling.rtc import limits
from parley.signaling.rtc.relay import Outbox, Relay
from parley.signaling.rtc.tokens import REFRESH_INTERVAL_SECONDS, refreshed_token

log = get_logger("parley.signaling.rtc")

CLOSE_INVALID_PAYLOAD = 1007


def keepalive_reply(request: rtc.SignalRequest) -> rtc.SignalResponse | None:
    """``ping`` -> ``pong``; ``ping_req`` -> ``pong_resp`` (milliseconds)."""
    kind = request.WhichOneof("message")
    if kind == "ping":
        return rtc.SignalResponse(pong=now_ms())
    if kind == "ping_req":
        return rtc.SignalResponse(
            pong_resp=rtc.Pong(last_ping_timestamp=request.ping_req.timestamp, timestamp=now_ms())
        )
    return None


def parse_frame(msg: aiohttp.WSMessage) -> tuple[rtc.SignalRequest, bytes]:
    """Decode a binary (protobuf) or text (protojson) frame; raise ValueError when it is neither."""
    request = rtc.SignalRequest()
    if msg.type == aiohttp.WSMsgType.BINARY:
        data = bytes(msg.data)
        try:
            request.ParseFromString(data)
        except DecodeError as exc:
            raise ValueError(f"invalid SignalRequest: {exc}") from exc
        return request, data
    try:
        json_format.Parse(str(msg.data), request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise ValueError(f"invalid SignalRequest JSON: {exc}") from exc
    return request, request.SerializeToString()


@dataclass(slots=True)
class ClientConnection:
    ws: web.WebSocketResponse
    relay: Relay
    outbox: Outbox
    node_id: str
    room_name: str
    participant_sid: str
    claims: Claims
    secret: str
    text_mode: bool = False
    empty_frames: limits.EmptyFrameGuard = field(default_factory=limits.EmptyFrameGuard)

    @property
    def connection_id(self) -> str:
        return self.outbox.connection_id

    def push(self, response: rtc.SignalResponse) -> None:
        self.outbox.queue.put_nowait(
            relay_pb2.ServerSignal(connection_id=self.connection_id, response=response.SerializeToString())
        )

    async def run(self) -> None:
        tasks = TaskSet(f"rtc.{self.connection_id}")
        tasks.spawn(self._write(tasks), name="rtc.write")
        reason = "client closed"
        try:
            reason = await self._read()
        finally:
            await self._to_sfu(relay_pb2.ClientSignal(closed=True))
            await tasks.aclose()
            self.relay.unregister(self.connection_id)
            if not self.ws.closed:
                await self.ws.close()
            log.info("connection ended", room=self.room_name, participant=self.participant_sid, why=reason)

    async def _to_sfu(self, signal: relay_pb2.ClientSignal) -> None:
        signal.connection_id = self.connection_id
        signal.participant_sid = self.participant_sid
        signal.room_name = self.room_name
        try:
            await self.relay.to_sfu(self.node_id, signal)
        except Exception as exc:
            log.warning("cannot relay to sfu", error=str(exc), room=self.room_name)

    async def _read(self) -> str:
        async for msg in self.ws:
            if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                if msg.type == aiohttp.WSMsgType.ERROR:
                    return f"websocket error: {self.ws.exception()}"
                continue
            self.text_mode = msg.type == aiohttp.WSMsgType.TEXT
            try:
                request, data = parse_frame(msg)
            except ValueError as exc:
                log.warning("bad client frame", error=str(exc), room=self.room_name)
                await self.ws.close(code=CLOSE_INVALID_PAYLOAD, message=str(exc)[:120].encode())
                return str(exc)
            if request.WhichOneof("message") is None:
                if self.empty_frames.allow():
                    log.debug(
                        "empty client frame ignored", room=self.room_name, participant=self.participant_sid
                    )
                    continue
                return await self._close_for("too many empty frames", limits.CLOSE_POLICY_VIOLATION)
            reply = keepalive_reply(request)
            if reply is not None:
                self.push(reply)
                continue
            refusal = limits.refusal(request)
            if refusal is not None:
                log.info(
                    "request over the limits refused",
                    kind=request.WhichOneof("message"),
                    why=refusal.message,
                    room=self.room_name,
                    participant=self.participant_sid,
                )
                self.push(rtc.SignalResponse(request_response=refusal))
                continue
            if limits.too_large(data):
                kind = request.WhichOneof("message")
                return await self._close_for(f"{kind} request too large", limits.CLOSE_TOO_BIG)
            await self._to_sfu(relay_pb2.ClientSignal(request=data))
        return f"closed ({self.ws.close_code})"

    async def _close_for(self, reason: str, code: int) -> str:
        log.warning(
            "closing client connection", why=reason, room=self.room_name, participant=self.participant_sid
        )
        await self.ws.close(code=code, message=reason.encode())
        return reason

    async def _write(self, tasks: TaskSet) -> None:
        first = True
        while True:
            signal = await self.outbox.queue.get()
            if signal.response:
                if not await self._send(signal.response):
                    return
                if first:
                    first = False
                    tasks.spawn(self._refresh(), name="rtc.refresh")
            if signal.close:
                await self.ws.close()
                return

    async def _send(self, data: bytes) -> bool:
        """Write one frame; False when the socket is closed or closing (the writer's normal end)."""
        if self.ws.closed:
            return False
        try:
            if self.text_mode:
                response = rtc.SignalResponse()
                response.ParseFromString(data)
                await self.ws.send_str(json_format.MessageToJson(response))
            else:
                await self.ws.send_bytes(data)
        except ConnectionResetError as exc:  # aiohttp.ClientConnectionResetError: closing transport
            log.debug("client socket closing; writer ends", error=str(exc), room=self.room_name)
            return False
        return True

    async def _refresh(self) -> None:
        while True:
            token = refreshed_token(self.claims, self.secret)
            self.push(rtc.SignalResponse(refresh_token=token))
            await asyncio.sleep(REFRESH_INTERVAL_SECONDS)
