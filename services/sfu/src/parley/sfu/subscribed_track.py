"""A subscription's down track as the session layer sets it up (LiveKit's ``SubscribedTrack``)."""

from __future__ import annotations

from livekit.protocol import rtc

from parley.observability import get_logger
from parley.sfu import track_settings
from parley.sfu.engine import SubscribedMedia
from parley.sfu.participant import Participant, PublishedTrack

log = get_logger("parley.sfu.subscribed_track")


def prepare(
    room: str, sub: Participant, pub: Participant, track: PublishedTrack, down: SubscribedMedia
) -> None:
    """A new down track starts muted as its track, limited by the subscriber's settings, and tells
    the subscriber when its stream allocator pauses or resumes it (``stream_state_update``). Each
    change of the layer the allocator allows is logged with the estimate behind it (layer -1:
    paused for bandwidth)."""
    down.paused = track.info.muted
    track_settings.apply(down, track.info, sub.track_settings.get(track.info.sid))

    def on_stream_state(track_sid: str, paused: bool) -> None:
        state = rtc.StreamState.PAUSED if paused else rtc.StreamState.ACTIVE
        info = rtc.StreamStateInfo(participant_sid=pub.sid, track_sid=track_sid, state=state)
        sub.send(rtc.SignalResponse(stream_state_update=rtc.StreamStateUpdate(stream_states=[info])))

    def on_allocation(track_sid: str, layer: int, estimate_bps: int) -> None:
        log.info(
            "stream allocation",
            room=room,
            participant=sub.sid,
            identity=sub.identity,
            track=track_sid,
            layer=layer,
            estimate_bps=estimate_bps,
        )

    down.on_stream_state = on_stream_state
    down.on_allocation = on_allocation
