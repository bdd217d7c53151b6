"""A subscription's down track as the session layer sets it up (LiveKit's ``SubscribedTrack``)."""

from __future__ import annotations

from livekit.protocol import rtc

from parley.sfu import track_settings
from parley.sfu.engine import SubscribedMedia
from parley.sfu.participant import Participant, PublishedTrack


def prepare(sub: Participant, pub: Participant, track: PublishedTrack, down: SubscribedMedia) -> None:
    """A new down track starts muted as its track, limited by the subscriber's settings, and tells
    the subscriber when its stream allocator pauses or resumes it (``stream_state_update``)."""
    down.paused = track.info.muted
    track_settings.apply(down, track.info, sub.track_settings.get(track.info.sid))

    def on_stream_state(track_sid: str, paused: bool) -> None:
        state = rtc.StreamState.PAUSED if paused else rtc.StreamState.ACTIVE
        info = rtc.StreamStateInfo(participant_sid=pub.sid, track_sid=track_sid, state=state)
        sub.send(rtc.SignalResponse(stream_state_update=rtc.StreamStateUpdate(stream_states=[info])))

    down.on_stream_state = on_stream_state
