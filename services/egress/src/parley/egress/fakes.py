"""An in-memory ``EgressStore`` for unit tests: the same record encoding and index rules as
``store.RedisStore``, one process, no Redis."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from livekit.protocol import egress as lk
from livekit.protocol import room as lk_room

from parley.egress import codec, infos
from parley.egress.events import room_event
from parley.egress.interfaces import Mutation
from parley.egress.record import EgressRecord
from parley.protocol.gen.room.v1 import room_state_pb2 as pb

T = TypeVar("T")


def _raw(fields: dict[str, bytes | str | int | float]) -> dict[bytes, bytes]:
    out = {}
    for k, v in fields.items():
        out[k.encode()] = v if isinstance(v, bytes) else str(v).encode()
    return out


class MemoryStore:
    def __init__(self) -> None:
        self.records: dict[str, dict[bytes, bytes]] = {}
        self.rooms: dict[str, set[str]] = {}
        self.due: dict[str, int] = {}
        self.ended: dict[str, int] = {}
        self.outbox: list[pb.RoomEvent] = []
        self._relay = ""
        self._lock = asyncio.Lock()

    async def get(self, egress_id: str) -> EgressRecord | None:
        return codec.decode(self.records.get(egress_id, {}))

    async def mutate(self, egress_id: str, fn: Mutation[T]) -> T:
        async with self._lock:
            record, result = fn(codec.decode(self.records.get(egress_id, {})))
            if record is not None:
                self.records[egress_id] = _raw(codec.encode(record))
                if record.created:
                    self.rooms.setdefault(record.room_name, set()).add(egress_id)
                if infos.is_final(record.info.status):
                    self.due.pop(egress_id, None)
                    self.ended[egress_id] = record.info.ended_at // 1_000_000
                else:
                    self.due[egress_id] = record.due_ms
                self.outbox += [room_event(name, info) for name, info in record.events]
            return result

    async def list_infos(self, room_name: str = "") -> list[lk.EgressInfo]:
        ids = self.rooms.get(room_name, set()) if room_name else set(self.records)
        found = [lk.EgressInfo.FromString(self.records[i][b"info"]) for i in ids if i in self.records]
        found.sort(key=lambda i: (i.started_at, i.egress_id))
        return found

    async def renew(self, worker_id: str, egress_ids: list[str], deadline_ms: int) -> None:
        for egress_id in egress_ids:
            raw = self.records.get(egress_id)
            if raw and raw.get(b"worker") == worker_id.encode() and egress_id in self.due:
                self.due[egress_id] = deadline_ms
                raw[b"due"] = str(deadline_ms).encode()

    async def claim_due(self, now_ms: int, lease_ms: int, limit: int = 32) -> list[str]:
        due = sorted((ms, i) for i, ms in self.due.items() if ms <= now_ms)[:limit]
        for _, egress_id in due:
            self.due[egress_id] = now_ms + lease_ms
        return [i for _, i in due]

    async def forget_ended(self, before_ms: int) -> int:
        gone = [i for i, ms in self.ended.items() if ms <= before_ms]
        for egress_id in gone:
            self.records.pop(egress_id, None)
            self.ended.pop(egress_id)
            for ids in self.rooms.values():
                ids.discard(egress_id)
        return len(gone)

    async def acquire_relay(self, token: str, ttl_ms: int) -> bool:
        if self._relay in ("", token):
            self._relay = token
            return True
        return False

    async def release_relay(self, token: str) -> None:
        if self._relay == token:
            self._relay = ""

    async def outbox_peek(self, count: int) -> list[pb.RoomEvent]:
        return list(self.outbox[:count])

    async def outbox_trim(self, count: int, token: str, ttl_ms: int) -> bool:
        if self._relay != token:
            return False
        del self.outbox[:count]
        return True


class MemoryAutoState:
    """``auto.AutoState`` in memory, for unit tests."""

    def __init__(self) -> None:
        self.configs: dict[str, lk_room.RoomEgress] = {}
        self.claimed: dict[str, set[str]] = {}

    async def keep(self, room: str, config: lk_room.RoomEgress) -> None:
        self.configs[room] = config

    async def load(self, room: str) -> lk_room.RoomEgress | None:
        return self.configs.get(room)

    async def claim(self, room: str, track_sid: str) -> bool:
        claimed = self.claimed.setdefault(room, set())
        if track_sid in claimed:
            return False
        claimed.add(track_sid)
        return True

    async def forget(self, room: str) -> None:
        self.configs.pop(room, None)
        self.claimed.pop(room, None)
