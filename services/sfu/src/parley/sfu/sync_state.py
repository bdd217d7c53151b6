"""``sync_state``: after a resume the client says what it believes (LiveKit's HandleSyncState).

The node kept the session, so publications, peer connections and data channels are already right;
what the client may have changed while its signalling was down is applied: its subscriptions (the
SDKs send the tracks whose subscription differs from their auto-subscribe default, with
``subscribe = not auto_subscribe``) and the tracks it disabled (adaptive stream).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from livekit.protocol import rtc

from parley.observability import get_logger
from parley.sfu import subscriptions
from parley.sfu.participant import Participant

if TYPE_CHECKING:
    from parley.sfu.room import Room

log = get_logger("parley.sfu.sync_state")


def apply(room: Room, p: Participant, state: rtc.SyncState) -> None:
    sids = subscriptions.track_sids_of(state.subscription)
    if sids:
        subscriptions.update(room, p, sids, state.subscription.subscribe)
    disabled = list(state.track_sids_disabled)
    if disabled:
        subscriptions.update_settings(room, p, rtc.UpdateTrackSettings(track_sids=disabled, disabled=True))
    log.info(
        "sync state applied",
        room=room.name,
        participant=p.sid,
        subscriptions=len(sids),
        disabled=len(disabled),
        publications=len(state.publish_tracks),
    )
