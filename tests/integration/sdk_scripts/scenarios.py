"""SDK scenarios run as a subprocess under either livekit 1.2.x (.venv) or 1.1.x (.venv-agents).

Usage: python scenarios.py <scenario> <json-args>; prints one JSON line with the observations.
Only the official SDK (livekit.rtc, livekit.api) and numpy are used.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from livekit import api, rtc
from sdk_helpers import (
    HEIGHT,
    SAMPLE_RATE,
    WIDTH,
    connect,
    play_tone,
    play_video,
    receive_audio,
    receive_video,
    track_of,
    wait_for,
)


async def media(args: dict[str, Any]) -> dict[str, Any]:
    """A publishes a 440 Hz tone and 320x240 video; B hears the tone, sees the frames and A's mute."""
    a = await connect(args, "alice")
    b = await connect(args, "bob", url_key="url_b")
    stop = asyncio.Event()
    audio = rtc.AudioSource(SAMPLE_RATE, 1)
    video = rtc.VideoSource(WIDTH, HEIGHT)
    mic = rtc.LocalAudioTrack.create_audio_track("mic", audio)
    cam = rtc.LocalVideoTrack.create_video_track("cam", video)
    tasks = [asyncio.create_task(play_tone(audio, stop)), asyncio.create_task(play_video(video, stop))]
    opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    mic_pub = await a.local_participant.publish_track(mic, opts)
    cam_opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False)
    await a.local_participant.publish_track(cam, cam_opts)
    b_audio = await wait_for(lambda: track_of(b, "alice", rtc.TrackKind.KIND_AUDIO), 20, "audio at B")
    b_video = await wait_for(lambda: track_of(b, "alice", rtc.TrackKind.KIND_VIDEO), 20, "video at B")
    freq = await asyncio.wait_for(receive_audio(b_audio, 1.0), 20)
    size = await asyncio.wait_for(receive_video(b_video, 10), 20)
    muted = asyncio.Event()
    b.on("track_muted", lambda participant, pub: muted.set() if pub.sid == mic_pub.sid else None)
    mic.mute()
    await asyncio.wait_for(muted.wait(), 10)
    remote_pub = b.remote_participants["alice"].track_publications[mic_pub.sid]
    stop.set()
    await asyncio.gather(*tasks)
    result = {"frequency": freq, "video_size": size, "muted_at_b": remote_pub.muted}
    await a.disconnect()
    await b.disconnect()
    return result


async def data(args: dict[str, Any]) -> dict[str, Any]:
    """Targeted data with a topic, RPC, attributes and metadata between three participants."""
    a = await connect(args, "alice", grants={"can_update_own_metadata": True})
    b = await connect(args, "bob", grants={"can_update_own_metadata": True})
    c = await connect(args, "carol")
    received: dict[str, list[tuple[str, str, str]]] = {"bob": [], "carol": []}
    for name, room in (("bob", b), ("carol", c)):
        room.on(
            "data_received",
            lambda packet, name=name: received[name].append(
                (
                    packet.participant.identity if packet.participant else "",
                    packet.topic,
                    packet.data.decode(),
                )
            ),
        )
    await wait_for(lambda: len(a.remote_participants) == 2, 15, "alice sees both")

    # livekit's annotation returns Union[F, Callable[[F], F]], which mypy cannot apply as a decorator
    @b.local_participant.register_rpc_method("greet")  # type: ignore[arg-type]
    async def greet(data: rtc.RpcInvocationData) -> str:
        return f"hello {data.caller_identity}: {data.payload}"

    await a.local_participant.publish_data(b"only-bob", topic="secret", destination_identities=["bob"])
    await a.local_participant.publish_data(b"everyone", topic="all")
    await wait_for(lambda: len(received["carol"]) >= 1 and len(received["bob"]) >= 2, 15, "data")
    rpc_reply = await a.local_participant.perform_rpc(
        destination_identity="bob", method="greet", payload="ping", response_timeout=10
    )
    await a.local_participant.set_attributes({"mood": "happy"})
    await a.local_participant.set_metadata("alice-meta")
    seen = await wait_for(
        lambda: (
            b.remote_participants.get("alice")
            and b.remote_participants["alice"].attributes.get("mood") == "happy"
            and b.remote_participants["alice"].metadata == "alice-meta"
        ),
        10,
        "attributes at bob",
    )
    result = {
        "bob": received["bob"],
        "carol": received["carol"],
        "rpc": rpc_reply,
        "attributes_seen": bool(seen),
        "own_attributes": dict(a.local_participant.attributes),
    }
    for room in (a, b, c):
        await room.disconnect()
    return result


async def autosub(args: dict[str, Any]) -> dict[str, Any]:
    """With auto_subscribe off, B gets A's track only after set_subscribed(True)."""
    b = await connect(args, "bob", auto_subscribe=False)
    subscribed: list[str] = []
    b.on("track_subscribed", lambda track, pub, participant: subscribed.append(pub.sid))
    markers: list[str] = []
    b.on("data_received", lambda packet: markers.append(packet.data.decode()))
    a = await connect(args, "alice")
    stop = asyncio.Event()
    audio = rtc.AudioSource(SAMPLE_RATE, 1)
    mic = rtc.LocalAudioTrack.create_audio_track("mic", audio)
    tone = asyncio.create_task(play_tone(audio, stop))
    pub = await a.local_participant.publish_track(
        mic, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    remote = await wait_for(
        lambda: (
            b.remote_participants.get("alice")
            and b.remote_participants["alice"].track_publications.get(pub.sid)
        ),
        15,
        "publication at bob",
    )
    # a round trip through the server after the publication: anything auto-subscribed would be here
    await a.local_participant.publish_data(b"marker")
    await wait_for(lambda: markers, 10, "marker")
    before = list(subscribed)
    # room-state (the Room API) sees what clients see: alice ACTIVE with her track
    lk = api.LiveKitAPI(args["url"].replace("ws://", "http://"), args["key"], args["secret"])
    try:

        async def alice_in_api() -> Any:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=args["room"]))
            return next((p for p in listed.participants if p.identity == "alice"), None)

        deadline = time.monotonic() + 10
        alice = await alice_in_api()
        while (alice is None or len(alice.tracks) != 1) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            alice = await alice_in_api()
    finally:
        await lk.aclose()
    api_view = {
        "state": int(alice.state) if alice else -1,
        "tracks": [t.sid for t in alice.tracks] if alice else [],
        "active": int(api.ParticipantInfo.State.ACTIVE),
    }
    remote.set_subscribed(True)
    await wait_for(lambda: subscribed, 15, "track_subscribed at bob")
    freq = await asyncio.wait_for(receive_audio(remote.track, 0.5), 15)
    stop.set()
    await tone
    result = {
        "subscribed_before": before,
        "subscribed_after": subscribed,
        "frequency": freq,
        "api_view": api_view,
        "track_sid": pub.sid,
    }
    await a.disconnect()
    await b.disconnect()
    return result


async def commands(args: dict[str, Any]) -> dict[str, Any]:
    """RoomService calls act on live sessions: mute, send data, update (permission), remove, delete."""
    a = await connect(args, "alice")
    b = await connect(args, "bob")
    c = await connect(args, "carol")
    events: dict[str, Any] = {"muted": [], "unpublished": [], "data": [], "disconnect": {}}
    b.on("track_muted", lambda participant, pub: events["muted"].append(pub.sid))
    b.on("track_unpublished", lambda pub, participant: events["unpublished"].append(pub.sid))
    b.on("data_received", lambda packet: events["data"].append([packet.topic, packet.data.decode()]))
    for name, room in (("alice", a), ("bob", b), ("carol", c)):
        room.on("disconnected", lambda reason, name=name: events["disconnect"].__setitem__(name, int(reason)))
    stop = asyncio.Event()
    audio = rtc.AudioSource(SAMPLE_RATE, 1)
    mic = rtc.LocalAudioTrack.create_audio_track("mic", audio)
    tone = asyncio.create_task(play_tone(audio, stop))
    pub = await a.local_participant.publish_track(
        mic, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    await wait_for(lambda: track_of(b, "alice", rtc.TrackKind.KIND_AUDIO), 20, "audio at bob")
    http_url = args["url"].replace("ws://", "http://")
    lk = api.LiveKitAPI(http_url, args["key"], args["secret"])
    try:
        await lk.room.mute_published_track(
            api.MuteRoomTrackRequest(room=args["room"], identity="alice", track_sid=pub.sid, muted=True)
        )
        await wait_for(lambda: pub.sid in events["muted"], 10, "server mute at bob")
        await lk.room.send_data(
            api.SendDataRequest(
                room=args["room"],
                data=b"from-server",
                kind=api.DataPacket.Kind.RELIABLE,
                destination_identities=["bob"],
                topic="srv",
            )
        )
        await wait_for(lambda: events["data"], 10, "server data at bob")
        await lk.room.update_participant(
            api.UpdateParticipantRequest(
                room=args["room"],
                identity="alice",
                attributes={"role": "host"},
                permission=api.ParticipantPermission(can_subscribe=True, can_publish=False),
            )
        )
        await wait_for(lambda: pub.sid in events["unpublished"], 10, "revoked publish unpublishes")
        role = await wait_for(lambda: b.remote_participants["alice"].attributes.get("role"), 10, "role")
        await lk.room.remove_participant(api.RoomParticipantIdentity(room=args["room"], identity="carol"))
        await wait_for(lambda: "carol" in events["disconnect"], 10, "carol removed")
        await lk.room.delete_room(api.DeleteRoomRequest(room=args["room"]))
        await wait_for(lambda: {"alice", "bob"} <= set(events["disconnect"]), 10, "room deleted")
    finally:
        await lk.aclose()
    stop.set()
    await tone
    return {
        "data": events["data"],
        "role": role,
        "disconnect": events["disconnect"],
        "reasons": {
            "removed": int(rtc.DisconnectReason.PARTICIPANT_REMOVED),
            "deleted": int(rtc.DisconnectReason.ROOM_DELETED),
        },
    }


async def manytracks(args: dict[str, Any]) -> dict[str, Any]:
    """A publishes 4 audio tracks (v1: one more than the client's 3 recvonly audio m-lines, so the
    server asks for more); B unsubscribes one, A publishes a 5th (v1: a freed m-line is reused)."""
    b = await connect(args, "bob")
    a = await connect(args, "alice")
    subscribed: list[str] = []
    unsubscribed: list[str] = []
    b.on("track_subscribed", lambda track, pub, participant: subscribed.append(pub.sid))
    b.on("track_unsubscribed", lambda track, pub, participant: unsubscribed.append(pub.sid))
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    sids: list[str] = []

    async def publish(name: str) -> str:
        audio = rtc.AudioSource(SAMPLE_RATE, 1)
        tasks.append(asyncio.create_task(play_tone(audio, stop)))
        track = rtc.LocalAudioTrack.create_audio_track(name, audio)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        return (await a.local_participant.publish_track(track, opts)).sid

    for i in range(4):
        sids.append(await publish(f"mic{i}"))
    await wait_for(lambda: set(sids) <= set(subscribed), 20, "4 tracks at bob")
    fourth = b.remote_participants["alice"].track_publications[sids[3]]
    assert fourth.track is not None
    freq_fourth = await asyncio.wait_for(receive_audio(fourth.track, 0.5), 15)
    first = b.remote_participants["alice"].track_publications[sids[0]]
    first.set_subscribed(False)
    await wait_for(lambda: sids[0] in unsubscribed, 15, "unsubscribed at bob")
    sids.append(await publish("mic4"))
    await wait_for(lambda: sids[4] in subscribed, 20, "5th track at bob")
    fifth = b.remote_participants["alice"].track_publications[sids[4]]
    assert fifth.track is not None
    freq_fifth = await asyncio.wait_for(receive_audio(fifth.track, 0.5), 15)
    stop.set()
    await asyncio.gather(*tasks)
    result = {
        "subscribed": list(subscribed),
        "unsubscribed": list(unsubscribed),
        "sids": sids,
        "frequency_fourth": freq_fourth,
        "frequency_fifth": freq_fifth,
    }
    await a.disconnect()
    await b.disconnect()
    return result


CHURN_HZ = [440.0, 660.0, 880.0, 550.0, 770.0]


async def churn(args: dict[str, Any]) -> dict[str, Any]:
    """A publishes one tone at a time (``CHURN_HZ``), unpublishing each before the next; then B
    unsubscribes from the last one and subscribes again. B must hear every new track's own tone while
    the SFU reuses freed m-lines (the test checks the subscriber SDP stays bounded in the SFU log)."""
    b = await connect(args, "bob")
    a = await connect(args, "alice")
    subscribed: list[str] = []
    unsubscribed: list[str] = []
    b.on("track_subscribed", lambda track, pub, participant: subscribed.append(pub.sid))
    b.on("track_unsubscribed", lambda track, pub, participant: unsubscribed.append(pub.sid))
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    heard: list[float] = []
    sids: list[str] = []

    async def publish(name: str, hz: float, tone_stop: asyncio.Event) -> str:
        audio = rtc.AudioSource(SAMPLE_RATE, 1)
        tasks.append(asyncio.create_task(play_tone(audio, tone_stop, hz)))
        track = rtc.LocalAudioTrack.create_audio_track(name, audio)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        return (await a.local_participant.publish_track(track, opts)).sid

    async def hear(sid: str) -> float:
        await wait_for(lambda: subscribed.count(sid) > unsubscribed.count(sid), 20, f"{sid} at bob")
        remote = await wait_for(
            lambda: (
                b.remote_participants.get("alice")
                and (pub := b.remote_participants["alice"].track_publications.get(sid))
                and pub.track
            ),
            10,
            f"{sid} track at bob",
        )
        return await asyncio.wait_for(receive_audio(remote, 0.5), 15)

    for i, hz in enumerate(CHURN_HZ):
        tone_stop = asyncio.Event()
        sid = await publish(f"mic{i}", hz, tone_stop if i < len(CHURN_HZ) - 1 else stop)
        sids.append(sid)
        heard.append(await hear(sid))
        if i < len(CHURN_HZ) - 1:
            tone_stop.set()
            await a.local_participant.unpublish_track(sid)
            await wait_for(lambda sid=sid: sid in unsubscribed, 15, f"{sid} unsubscribed at bob")
    last = b.remote_participants["alice"].track_publications[sids[-1]]
    last.set_subscribed(False)
    await wait_for(lambda: sids[-1] in unsubscribed, 15, "last track unsubscribed at bob")
    last.set_subscribed(True)
    heard.append(await hear(sids[-1]))
    stop.set()
    await asyncio.gather(*tasks)
    result = {
        "sids": sids,
        "heard": heard,
        "subscribed": list(subscribed),
        "unsubscribed": list(unsubscribed),
        "bob_sid": b.local_participant.sid,
    }
    await a.disconnect()
    await b.disconnect()
    return result


SCENARIOS = {
    "churn": churn,
    "media": media,
    "data": data,
    "autosub": autosub,
    "commands": commands,
    "manytracks": manytracks,
}


def main() -> None:
    name, raw = sys.argv[1], sys.argv[2]
    args = json.loads(raw)
    args.setdefault("url_b", args["url"])
    import scenarios_adaptive
    import scenarios_continuity
    import scenarios_features
    import scenarios_lifecycle
    import scenarios_metrics
    import scenarios_netns
    import scenarios_records

    scenarios = {
        **SCENARIOS,
        **scenarios_adaptive.SCENARIOS,
        **scenarios_continuity.SCENARIOS,
        **scenarios_features.SCENARIOS,
        **scenarios_lifecycle.SCENARIOS,
        **scenarios_metrics.SCENARIOS,
        **scenarios_netns.SCENARIOS,
        **scenarios_records.SCENARIOS,
    }
    result = asyncio.run(scenarios[name](args))
    result["sdk_version"] = rtc.__version__
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
