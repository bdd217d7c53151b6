"""One room's RTP taps (``RoomCommand.tap``, from egress workers through room-state's TapTrack).

A tap is a plain-RTP copy of one published track (``media/tap.py``), named by (track sid, tap id).
It is not a subscriber: no participant, no down track, nothing in participant lists or room-state.
Dynacast counts a tapped video track as wanting its top layer (``wants_top_layer``), so the
publisher keeps sending it with no subscriber at all.

Everything here runs in the room's actor. A tap that ends on its own (no RTCP from its receiver,
the receiver's BYE) is dropped from the registry through the actor. Ends with a BYE to the
receiver: ``stop``, unpublish, the publisher leaving, the room migrating or closing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.bus import ErrorCode, RpcError
from parley.observability import get_logger
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.sfu.engine import PublishedMedia, RtpTap, TapError

if TYPE_CHECKING:
    from parley.sfu.participant import Participant, PublishedTrack
    from parley.sfu.room import Room

log = get_logger("parley.sfu.taps")

_Key = tuple[str, str]
"""(track sid, tap id)."""


class Taps:
    def __init__(self, room: Room) -> None:
        self._room = room
        self._taps: dict[_Key, tuple[RtpTap, node_pb2.TapResponse]] = {}
        self._destinations: dict[_Key, tuple[str, int]] = {}
        """Where each tap sends (a start for another address replaces the tap)."""

    def __len__(self) -> int:
        return len(self._taps)

    def wants_top_layer(self, track_sid: str) -> bool:
        """A tap forwards this track (dynacast keeps its top layer on)."""
        return any(sid == track_sid for sid, _ in self._taps)

    async def handle(self, request: node_pb2.TapRequest) -> node_pb2.TapResponse:
        """Start or stop one tap. A start of a running tap answers it again when it names the same
        receiver, and replaces it (BYE to the old one) when it names another."""
        key = (request.track_sid, request.tap_id)
        if request.stop:
            self._end(key, "stopped")
            return node_pb2.TapResponse()
        running = self._taps.get(key)
        if running is not None and running[0].ended is None:
            if self._destinations.get(key) == (request.host, request.port):
                return running[1]
            self._end(key, "replaced")  # the job moved to another receiver (its worker was lost)
        if not request.host or not 0 < request.port < 65536:
            raise RpcError(ErrorCode.INVALID_ARGUMENT, "a tap needs the receiver's host and port")
        found = self._track(request.track_sid)
        if found is None and self._announced(request.track_sid):
            raise RpcError(ErrorCode.UNAVAILABLE, f"track {request.track_sid} has no media yet")
        if found is None:
            raise RpcError(
                ErrorCode.NOT_FOUND, f"track {request.track_sid} not found in room {self._room.name}"
            )
        publisher, track, up = found
        if up is None:  # published, its media not bound yet: the worker asks again
            raise RpcError(ErrorCode.UNAVAILABLE, f"track {request.track_sid} has no media yet")
        return await self._start(key, request, publisher, track, up)

    async def _start(
        self,
        key: _Key,
        request: node_pb2.TapRequest,
        publisher: Participant,
        track: PublishedTrack,
        up: PublishedMedia,
    ) -> node_pb2.TapResponse:
        room = self._room
        settings = room.host.config.sfu
        fields = {
            "room": room.name,
            "participant": publisher.sid,
            "track": track.info.sid,
            "tap": request.tap_id,
        }
        try:
            tap = await RtpTap.open(
                up,
                host=request.host,
                port=request.port,
                bind_host=settings.tap_bind_host,
                context=room.media,
                rtcp_timeout=settings.tap_rtcp_timeout,
                on_end=lambda ended, _reason: self._ended(key, ended),
                muted=track.info.muted,
                fields=fields,
            )
        except TapError as exc:
            raise RpcError(ErrorCode.UNAVAILABLE, str(exc)) from exc
        codec = tap.codec
        response = node_pb2.TapResponse(
            mime_type=codec.mime_type,
            payload_type=codec.payload_type,
            clock_rate=codec.clock_rate,
            channels=codec.channels,
            fmtp=codec.fmtp,
            ssrc=tap.ssrc,
            source_host=tap.source_host,
            source_port=tap.source_port,
            track=track.info,
            participant_identity=publisher.identity,
        )
        self._taps[key] = (tap, response)
        self._destinations[key] = (request.host, request.port)
        room.dynacast.refresh(track.info.sid)
        log.info(
            "tap started",
            destination=f"{request.host}:{request.port}",
            source=f"{tap.source_host}:{tap.source_port}",
            mime=codec.mime_type,
            ssrc=tap.ssrc,
            **fields,
        )
        return response

    def _announced(self, track_sid: str) -> bool:
        """Added (add_track answered with this sid), its offer not negotiated yet."""
        return any(
            info.sid == track_sid for p in self._room.participants.values() for info in p.pending.values()
        )

    def _track(self, track_sid: str) -> tuple[Participant, PublishedTrack, PublishedMedia | None] | None:
        """The publisher, the track and its up track (None until its m-line is bound)."""
        for p in self._room.participants.values():
            track = p.published.get(track_sid)
            if track is not None and not p.closed:
                return p, track, track.up
        return None

    # -- the track's life ---------------------------------------------------------------------------
    def set_muted(self, track_sid: str, muted: bool) -> None:
        for (sid, _), (tap, _) in self._taps.items():
            if sid == track_sid:
                tap.set_muted(muted)

    def end_track(self, track_sid: str, reason: str) -> None:
        """Every tap of ``track_sid`` ends (BYE to its receiver)."""
        for key in [k for k in self._taps if k[0] == track_sid]:
            self._end(key, reason)

    def close(self, reason: str) -> None:
        """Every tap of the room ends (BYE to its receiver)."""
        for key in list(self._taps):
            self._end(key, reason)

    def _end(self, key: _Key, reason: str) -> None:
        entry = self._taps.pop(key, None)
        self._destinations.pop(key, None)
        if entry is not None:
            entry[0].end(reason)
            self._room.dynacast.refresh(key[0])

    def _ended(self, key: _Key, tap: RtpTap) -> None:
        """A tap ended (told by the tap, on any path): forget it in the actor, if it ended on its own."""
        if key not in self._taps or self._taps[key][0] is not tap:
            return

        async def forget() -> None:
            entry = self._taps.get(key)
            if entry is not None and entry[0] is tap:
                del self._taps[key]
                self._destinations.pop(key, None)
                self._room.dynacast.refresh(key[0])

        self._room.submit(forget)
