"""Dynacast: tell each video publisher which simulcast layers anyone needs (LiveKit pkg/rtc/dynacast).

Per published video track the needed quality is the highest ``requested_max_spatial`` over the down
tracks of its subscribers (spatial layer == ``VideoQuality``: 0 LOW, 1 MEDIUM, 2 HIGH; ``NO_LAYER``:
nothing), HIGH for a track an RTP tap forwards (``pinned``: ``taps.py``). The publisher gets
``subscribed_quality_update`` with every quality up to that one enabled:

* the first decision is sent at once when the track has a subscriber, else after
  ``INITIAL_WAIT`` (then everything is off: nobody subscribed);
* a change that enables a layer is sent at once; one that only disables layers waits
  ``sfu.dynacast_pause_delay`` and is dropped if the layers are needed again meanwhile;
* nothing is sent while the publisher has the track muted; unmuting re-sends the current state.

The server always runs dynacast (LiveKit's ``DisableDynacast`` is never set); clients that publish
without it (livekit-client ``dynacast: false``) ignore the update. Both fields are filled as LiveKit
does: ``subscribed_codecs`` (read by livekit-client, and first by the Rust SDK, keyed by the codec
name the client published, lower case without ``video/``) and ``subscribed_qualities`` (older
clients; the Rust SDK's fallback).

Callers: ``publish`` (track bound / unpublished / muted), ``subscriptions`` (subscribe /
unsubscribe) and the subscriber's track settings (``refresh``). All run in the room's actor; timers
hand their work back to it through ``Scheduler``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from livekit.protocol import models, rtc

from parley.observability import get_logger
from parley.sfu.media.interfaces import MAX_SPATIAL, NO_LAYER

if TYPE_CHECKING:
    from parley.sfu.participant import Participant, PublishedTrack
    from parley.sfu.room import Room

log = get_logger("parley.sfu.dynacast")

INITIAL_WAIT = 10.0
"""Seconds a new track waits for its first subscriber before its layers are switched off (Go
``initialQualityUpdateWait``)."""

_QUALITIES = (models.VideoQuality.LOW, models.VideoQuality.MEDIUM, models.VideoQuality.HIGH)


class Handle(Protocol):
    """A pending timer (``asyncio.TimerHandle``)."""

    def cancel(self) -> None: ...


Scheduler = Callable[[float, Callable[[], None]], Handle]
"""``schedule(delay, fn)``: run ``fn`` in the room's actor after ``delay`` seconds."""


@dataclass(slots=True)
class _TrackState:
    publisher: Participant
    track: PublishedTrack
    codec: str
    """The codec name the publisher's client uses for this track (``vp8``)."""
    committed: int | None = None
    """The quality last decided (None: not yet; ``NO_LAYER``: all off)."""
    timer: Handle | None = None
    """The initial wait, or a pending downgrade."""
    initial: bool = True


@dataclass(slots=True, weakref_slot=True)
class Dynacast:
    """One room's dynacast state: track sid -> what its publisher was last told."""

    room: Room
    pause_delay: float
    schedule: Scheduler
    tracks: dict[str, _TrackState] = field(default_factory=dict)
    pinned: Callable[[str], bool] = field(default=lambda _sid: False)
    """Track sids something other than a subscriber forwards at the top layer (an RTP tap): their
    needed quality is HIGH, as if a subscriber asked for it."""

    # -- lifecycle --------------------------------------------------------------------------------
    def add(self, publisher: Participant, track: PublishedTrack, codec: str = "") -> None:
        """A video track was bound; other kinds are ignored."""
        if track.info.type != models.TrackType.VIDEO or track.info.sid in self.tracks:
            return
        sid = track.info.sid
        state = _TrackState(publisher, track, codec_name(codec or track.info.mime_type))
        self.tracks[sid] = state
        state.timer = self.schedule(INITIAL_WAIT, lambda: self._initial_elapsed(sid))
        self.refresh(sid)

    def remove(self, track_sid: str) -> None:
        state = self.tracks.pop(track_sid, None)
        if state is not None and state.timer is not None:
            state.timer.cancel()

    def close(self) -> None:
        for sid in list(self.tracks):
            self.remove(sid)

    # -- decisions --------------------------------------------------------------------------------
    def needed(self, track_sid: str) -> tuple[int, bool]:
        """(highest spatial layer any subscriber requests or ``NO_LAYER``, whether any subscribes)."""
        if self.pinned(track_sid):
            return MAX_SPATIAL, True
        best, any_sub = NO_LAYER, False
        for p in list(self.room.participants.values()):
            down = p.downtracks.get(track_sid)
            if down is None or p.closed:
                continue
            any_sub = True
            try:
                layer = int(down.requested_max_spatial)
            except Exception:
                layer = MAX_SPATIAL
            best = max(best, min(layer, MAX_SPATIAL))
        return best, any_sub

    def committed(self, track_sid: str) -> int | None:
        """What the publisher was last told for this track (None: nothing yet, all layers flow)."""
        state = self.tracks.get(track_sid)
        return None if state is None else state.committed

    def refresh(self, track_sid: str, *, force: bool = False) -> None:
        """Re-evaluate one track: send now, schedule a downgrade, or cancel a pending one."""
        state = self.tracks.get(track_sid)
        if state is None or state.track.info.muted:
            return
        wanted, any_sub = self.needed(track_sid)
        if state.committed is None:
            if any_sub or (force and not state.initial):
                self._commit(state, wanted)
            return
        if force:
            self._commit(state, wanted, resend=True)
        elif wanted > state.committed:
            self._commit(state, wanted)
        elif wanted == state.committed:
            self._cancel_timer(state)
        elif state.timer is None:
            state.timer = self.schedule(self.pause_delay, lambda: self._downgrade_elapsed(track_sid))

    def refresh_all(self) -> None:
        for sid in list(self.tracks):
            self.refresh(sid)

    def _initial_elapsed(self, track_sid: str) -> None:
        state = self.tracks.get(track_sid)
        if state is None or not state.initial:
            return
        state.timer = None
        state.initial = False
        if state.committed is None and not state.track.info.muted:
            self._commit(state, self.needed(track_sid)[0])

    def _downgrade_elapsed(self, track_sid: str) -> None:
        state = self.tracks.get(track_sid)
        if state is None:
            return
        state.timer = None
        if state.track.info.muted:
            return
        wanted, _ = self.needed(track_sid)
        if state.committed is None or wanted != state.committed:
            self._commit(state, wanted)

    def _cancel_timer(self, state: _TrackState) -> None:
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        state.initial = False

    def _commit(self, state: _TrackState, quality: int, *, resend: bool = False) -> None:
        self._cancel_timer(state)
        if quality == state.committed and not resend:
            return
        state.committed = quality
        update = subscribed_quality_update(state.track.info.sid, state.codec, quality)
        state.publisher.send(rtc.SignalResponse(subscribed_quality_update=update))
        log.info(
            "subscribed quality update",
            room=self.room.name,
            participant=state.publisher.sid,
            track=state.track.info.sid,
            max_quality=quality,
        )


def codec_name(mime: str) -> str:
    """``video/VP8`` -> ``vp8`` (how LiveKit names codecs in SubscribedCodec)."""
    return mime.split("/", 1)[-1].lower()


def subscribed_quality_update(track_sid: str, codec: str, max_quality: int) -> rtc.SubscribedQualityUpdate:
    """Every quality up to ``max_quality`` enabled (none for ``NO_LAYER``), in both fields."""
    qualities = [rtc.SubscribedQuality(quality=q, enabled=q <= max_quality) for q in _QUALITIES]
    return rtc.SubscribedQualityUpdate(
        track_sid=track_sid,
        subscribed_qualities=qualities,
        subscribed_codecs=[rtc.SubscribedCodec(codec=codec, qualities=qualities)],
    )


# -- hooks ----------------------------------------------------------------------------------------
def refresh(room: Room, publisher: Participant, track_sid: str) -> None:
    """A subscriber's settings or subscriptions of ``track_sid`` (published by ``publisher``) changed."""
    del publisher  # the track sid is unique in the room; kept for the callers' symmetry
    room.dynacast.refresh(track_sid)


def refresh_sid(room: Room, track_sid: str) -> None:
    """``refresh`` for callers without the publisher at hand (a down track of ``track_sid`` went away
    or changed); nothing for a track the room's dynacast does not follow."""
    room.dynacast.refresh(track_sid)


def track_published(room: Room, publisher: Participant, track: PublishedTrack, codec: str = "") -> None:
    """A track was bound to its m-line; ``codec`` is the client's own name for its codec."""
    room.dynacast.add(publisher, track, codec)


def track_unpublished(room: Room, track_sid: str) -> None:
    room.dynacast.remove(track_sid)


def track_muted(room: Room, track_sid: str, muted: bool) -> None:
    """Nothing is sent while muted; unmuting re-sends the current state at once (Go ForceUpdate)."""
    if not muted:
        room.dynacast.refresh(track_sid, force=True)
