"""Load from the official SDKs while a test breaks something: ``livekit-api`` RoomService calls in a
loop (``ApiLoad``) and Python ``livekit`` SDK joins and leaves (``join``, ``JoinLoop``); every call is
recorded with its start, end and error, so a test can say which calls failed and how late they were.

Loaded by the tests with ``parley.testing.load_script`` (it is not a package).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

from livekit import api, rtc

from parley.auth import Claims, VideoGrant, create_token


@dataclass
class Call:
    kind: str
    """``CreateRoom``, ``ListRooms``, ``ListParticipants``, ``join``, ``leave``."""
    started: float
    ended: float
    error: str = ""
    detail: str = ""
    """The room created, the identity joined."""

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class Record:
    calls: list[Call] = field(default_factory=list)

    async def timed(self, kind: str, detail: str, call: Awaitable[object]) -> bool:
        started = time.monotonic()
        try:
            await call
        except Exception as exc:
            self.calls.append(Call(kind, started, time.monotonic(), f"{type(exc).__name__}: {exc}", detail))
            return False
        self.calls.append(Call(kind, started, time.monotonic(), "", detail))
        return True

    def failed(self) -> list[Call]:
        return [c for c in self.calls if not c.ok]

    def first_ok_after(self, moment: float, kinds: tuple[str, ...]) -> Call | None:
        """The earliest-ending successful call of ``kinds`` that started at or after ``moment``."""
        done = [c for c in self.calls if c.ok and c.kind in kinds and c.started >= moment]
        return min(done, key=lambda c: c.ended, default=None)

    def spanning(self, moment: float) -> list[Call]:
        """Calls in flight at ``moment`` or started after it."""
        return [c for c in self.calls if c.ended >= moment]


def token(key: str, secret: str, room: str, identity: str) -> str:
    return create_token(
        key, secret, Claims(identity=identity, name=identity, video=VideoGrant(room_join=True, room=room))
    )


async def join(ws_url: str, key: str, secret: str, room: str, identity: str) -> rtc.Room:
    """An SDK participant; a failed connect is disconnected (its tasks would linger otherwise).
    No timeout around the connect: cancelling the SDK mid-connect can leave its tasks hanging."""
    participant = rtc.Room()
    try:
        await participant.connect(ws_url, token(key, secret, room, identity))
    except BaseException:
        await leave(participant)
        raise
    return participant


async def leave(participant: rtc.Room) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(participant.disconnect(), 20)


@dataclass
class ApiLoad:
    """RoomService calls in a loop until ``stop()``: CreateRoom (a new room each time), ListRooms,
    ListParticipants of ``room``, one after the other; ``created`` holds the rooms it created."""

    http_url: str
    key: str
    secret: str
    room: str
    prefix: str
    record: Record = field(default_factory=Record)
    created: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        client = api.LiveKitAPI(self.http_url, self.key, self.secret)
        try:
            n = 0
            while not self._stop.is_set():
                name = f"{self.prefix}-{n}"
                create = api.CreateRoomRequest(name=name, empty_timeout=600)
                if await self.record.timed("CreateRoom", name, client.room.create_room(create)):
                    self.created.append(name)
                await self.record.timed("ListRooms", "", client.room.list_rooms(api.ListRoomsRequest()))
                people = api.ListParticipantsRequest(room=self.room)
                await self.record.timed("ListParticipants", self.room, client.room.list_participants(people))
                n += 1
        finally:
            await client.aclose()

    def stop(self) -> None:
        self._stop.set()


@dataclass
class JoinLoop:
    """SDK participants joining ``room`` and leaving again, one after the other, until ``stop()``."""

    ws_url: str
    key: str
    secret: str
    room: str
    prefix: str
    stay: float = 0.5
    """Seconds each participant stays before it leaves."""
    record: Record = field(default_factory=Record)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        n = 0
        while not self._stop.is_set():
            identity = f"{self.prefix}-{n}"
            joined: list[rtc.Room] = []
            if await self.record.timed("join", identity, self._join(identity, joined)):
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.stay)
                await self.record.timed("leave", identity, asyncio.wait_for(joined[0].disconnect(), 20))
            n += 1

    async def _join(self, identity: str, into: list[rtc.Room]) -> None:
        into.append(await join(self.ws_url, self.key, self.secret, self.room, identity))

    def stop(self) -> None:
        self._stop.set()
