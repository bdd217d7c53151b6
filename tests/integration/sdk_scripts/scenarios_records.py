"""SDK scenario for record ownership: the Room API and the publisher change alice's record, each
change once and each change repeated; bob watches. The test counts room-state's events.

Server-side changes (MutePublishedTrack, UpdateParticipant) are written by room-state, which sends
the node the version it wrote; the publisher's own changes (unmute, set_metadata) are reported by the
node as deltas. A repeat of any of them changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit import api, rtc
from sdk_helpers import SAMPLE_RATE, connect, play_tone, track_of, wait_for

MIC = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)


async def record_writes(args: dict[str, Any]) -> dict[str, Any]:
    a = await connect(args, "alice", grants={"can_update_own_metadata": True})
    b = await connect(args, "bob")
    seen: dict[str, Any] = {"muted": 0, "unmuted": 0, "metadata": []}
    b.on("track_muted", lambda participant, pub: seen.__setitem__("muted", seen["muted"] + 1))
    b.on("track_unmuted", lambda participant, pub: seen.__setitem__("unmuted", seen["unmuted"] + 1))
    b.on("participant_metadata_changed", lambda participant, old, new: seen["metadata"].append(new))
    stop = asyncio.Event()
    audio = rtc.AudioSource(SAMPLE_RATE, 1)
    mic = rtc.LocalAudioTrack.create_audio_track("mic", audio)
    tone = asyncio.create_task(play_tone(audio, stop))
    pub = await a.local_participant.publish_track(mic, MIC)
    await wait_for(lambda: track_of(b, "alice", rtc.TrackKind.KIND_AUDIO), 20, "audio at bob")
    http_url = args["url"].replace("ws://", "http://")
    lk = api.LiveKitAPI(http_url, args["key"], args["secret"])
    room = args["room"]
    try:
        mute = api.MuteRoomTrackRequest(room=room, identity="alice", track_sid=pub.sid, muted=True)
        first = await lk.room.mute_published_track(mute)
        await wait_for(lambda: seen["muted"] == 1, 10, "server mute at bob")
        await wait_for(lambda: pub.muted, 10, "server mute at alice")
        again = await lk.room.mute_published_track(mute)
        update = api.UpdateParticipantRequest(room=room, identity="alice", metadata="from-api")
        u1 = await lk.room.update_participant(update)
        await wait_for(lambda: "from-api" in seen["metadata"], 10, "API metadata at bob")
        u2 = await lk.room.update_participant(update)
        # the publisher's own changes: reported by the node as deltas
        mic.unmute()
        await wait_for(lambda: seen["unmuted"] == 1, 10, "alice's unmute at bob")
        await a.local_participant.set_metadata("from-alice")
        await wait_for(lambda: "from-alice" in seen["metadata"], 10, "alice's metadata at bob")
        await a.local_participant.set_metadata("from-alice")
        final = await lk.room.get_participant(api.RoomParticipantIdentity(room=room, identity="alice"))
    finally:
        await lk.aclose()
    stop.set()
    await tone
    await a.disconnect()
    await b.disconnect()
    return {
        "track_sid": pub.sid,
        "alice_sid": final.sid,
        "mute_responses": [first.track.muted, again.track.muted],
        "update_versions": [u1.version, u2.version],
        "final_version": final.version,
        "final_metadata": final.metadata,
        "final_muted": [t.muted for t in final.tracks],
        "bob": seen,
    }


SCENARIOS = {"record_writes": record_writes}
