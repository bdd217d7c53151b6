"""egress_started / egress_updated / egress_ended as RoomEvents (the webhook service delivers them
as LiveKit's WebhookEvent with ``egress_info``). They leave ``room_sequence`` at 0, as dispatch's
job events do: room-state's sequence belongs to room-state."""

from __future__ import annotations

from livekit.protocol import egress as lk
from livekit.protocol import models

from parley.protocol.gen.room.v1 import room_state_pb2 as pb
from parley.protocol.ids import EVENT_PREFIX, new_id, now_ms


def room_event(name: str, info: lk.EgressInfo) -> pb.RoomEvent:
    ms = now_ms()
    event = pb.RoomEvent(id=new_id(EVENT_PREFIX), event=name, created_at=ms // 1000, created_at_ms=ms)
    event.room.CopyFrom(models.Room(sid=info.room_id, name=info.room_name))
    event.egress_info.CopyFrom(info)
    return event
