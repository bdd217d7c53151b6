"""Auto-egress: ``CreateRoomRequest.egress`` (a RoomEgress) starts egress when the room does.

The controller's durable consumer ``egress.auto_consumer`` on ``PARLEY_EVENTS`` (shared by every
controller instance; one room's events in order):

* ``room_started`` whose ``room_config.egress`` has ``tracks`` or ``participant``: it is kept for
  the room (``AutoState``). ``room`` (composite) and ``participant`` are started too, through the same
  API path as a caller's request; workers refuse those kinds for now (``invalid_argument``), which is
  logged with the room.
* ``track_published`` by a participant that is not an egress recorder: a ParticipantEgress of its
  publisher on its first track (once per identity), and a TrackEgress of that track
  with the room's AutoTrackEgress, once per track (``AutoState.claim``). The file path gets
  ``-{track_id}`` before its extension unless it names ``{track_id}`` (LiveKit's rule), so several
  tracks never share a name.
* ``room_finished``: the room's auto state is forgotten (running egresses end with their tracks).

A start that fails for a reason that may pass (no worker yet, a timeout) is redelivered; any other
refusal is logged and the event acked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from livekit.protocol import egress as lk
from livekit.protocol import models
from livekit.protocol import room as lk_room

from parley.bus import BusError, Delivery
from parley.observability import get_logger
from parley.protocol.gen.room.v1.room_state_pb2 import RoomEvent

log = get_logger("parley.egress.auto")

EGRESS_KIND = models.ParticipantInfo.Kind.EGRESS
StartTrack = Callable[[lk.TrackEgressRequest], Awaitable[lk.EgressInfo]]


class AutoState(Protocol):
    """Each room's RoomEgress and the tracks already given an egress (Redis: ``store.py``)."""

    async def keep(self, room: str, config: lk_room.RoomEgress) -> None: ...

    async def load(self, room: str) -> lk_room.RoomEgress | None: ...

    async def claim(self, room: str, track_sid: str) -> bool:
        """True the first time ``track_sid`` is claimed in ``room``."""
        ...

    async def forget(self, room: str) -> None: ...


def track_request(room: str, track_sid: str, auto: lk.AutoTrackEgress) -> lk.TrackEgressRequest:
    """The TrackEgress of one track for the room's AutoTrackEgress."""
    path = auto.filepath
    if path and "{track_id}" not in path and not path.endswith("/"):
        stem, dot, ext = path.rpartition(".")
        path = f"{stem}-{{track_id}}.{ext}" if dot and "/" not in ext else f"{path}-{{track_id}}"
    output = lk.DirectFileOutput(filepath=path, disable_manifest=auto.disable_manifest)
    which = auto.WhichOneof("output")
    if which is not None:
        getattr(output, which).CopyFrom(getattr(auto, which))
    return lk.TrackEgressRequest(room_name=room, track_id=track_sid, file=output)


class AutoEgress:
    def __init__(
        self,
        state: AutoState,
        start_track: StartTrack,
        start_room: Callable[[lk.RoomCompositeEgressRequest], Awaitable[lk.EgressInfo]],
        start_participant: Callable[[lk.ParticipantEgressRequest], Awaitable[lk.EgressInfo]],
    ) -> None:
        self._state = state
        self._start_track = start_track
        self._start_room = start_room
        self._start_participant = start_participant

    async def handle(self, delivery: Delivery) -> None:
        event = RoomEvent()
        try:
            event.ParseFromString(delivery.data)
        except Exception:
            await delivery.term()
            return
        try:
            await self.apply(event)
        except BusError as exc:
            if not exc.retryable:
                raise
            log.warning("auto-egress start retried", room=event.room.name, error=str(exc))
            await delivery.nak(delay=1.0)
            return
        await delivery.ack()

    async def apply(self, event: RoomEvent) -> None:
        room = event.room.name
        if event.event == "room_started" and event.room_config.HasField("egress"):
            config = event.room_config.egress
            if config.HasField("tracks") or config.HasField("participant"):
                await self._state.keep(room, config)
            if config.HasField("room"):
                composite = lk.RoomCompositeEgressRequest()
                composite.CopyFrom(config.room)
                composite.room_name = room
                await self._launch(room, "room composite", self._start_room(composite))
        elif event.event == "track_published" and event.participant.kind != EGRESS_KIND:
            kept = await self._state.load(room)
            if kept is None:
                return
            if kept.HasField("participant"):
                await self._participant(room, event.participant.identity, kept.participant)
            if kept.HasField("tracks") and await self._state.claim(room, event.track.sid):
                track = track_request(room, event.track.sid, kept.tracks)
                await self._launch(room, "track", self._start_track(track), track=event.track.sid)
        elif event.event == "room_finished":
            await self._state.forget(room)

    async def _participant(self, room: str, identity: str, auto: lk.AutoParticipantEgress) -> None:
        if not await self._state.claim(room, f"participant:{identity}"):
            return
        request = lk.ParticipantEgressRequest(room_name=room, identity=identity)
        which = auto.WhichOneof("options")
        if which is not None:
            getattr(request, which).CopyFrom(getattr(auto, which))
        request.file_outputs.extend(auto.file_outputs)
        request.segment_outputs.extend(auto.segment_outputs)
        await self._launch(room, "participant", self._start_participant(request), identity=identity)

    async def _launch(self, room: str, kind: str, start: Awaitable[lk.EgressInfo], **fields: str) -> None:
        try:
            info = await start
        except BusError as exc:
            if exc.retryable:
                raise
            log.warning("auto-egress refused", room=room, kind=kind, error=str(exc), **fields)
            return
        log.info("auto-egress started", room=room, kind=kind, egress_id=info.egress_id, **fields)
