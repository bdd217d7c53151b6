"""SDK scenarios for speakers, permissions, hidden participants and data streams.

Each scenario ends with a barrier: an action whose effect reaches the observer over the same ordered
path (the signalling outbox, or the SFU's own decision) after the effect being ruled out would have,
so "never seen" is checked without fixed waits.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from livekit import api, rtc
from livekit.rtc._ffi_client import FfiClient
from livekit.rtc._proto import ffi_pb2
from sdk_helpers import SAMPLE_RATE, connect, play_tone, receive_audio, track_of, wait_for

MIC = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)


async def play_silence(source: rtc.AudioSource, stop: asyncio.Event) -> None:
    samples = SAMPLE_RATE // 100
    silence = np.zeros(samples, dtype=np.int16).tobytes()
    while not stop.is_set():
        await source.capture_frame(rtc.AudioFrame(silence, SAMPLE_RATE, 1, samples))


async def publish_audio(
    room: rtc.Room, name: str, stop: asyncio.Event, tasks: list[asyncio.Task[None]], *, loud: bool = True
) -> tuple[rtc.LocalAudioTrack, rtc.LocalTrackPublication]:
    source = rtc.AudioSource(SAMPLE_RATE, 1)
    tasks.append(asyncio.create_task(play_tone(source, stop) if loud else play_silence(source, stop)))
    track = rtc.LocalAudioTrack.create_audio_track(name, source)
    return track, await room.local_participant.publish_track(track, MIC)


def lk_api(args: dict[str, Any]) -> api.LiveKitAPI:
    return api.LiveKitAPI(args["url"].replace("ws://", "http://"), args["key"], args["secret"])


async def list_identities(args: dict[str, Any]) -> list[str]:
    lk = lk_api(args)
    try:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=args["room"]))
    finally:
        await lk.aclose()
    return sorted(p.identity for p in listed.participants)


async def stop_all(stop: asyncio.Event, tasks: list[asyncio.Task[None]], *rooms: rtc.Room) -> None:
    stop.set()
    await asyncio.gather(*tasks)
    for room in rooms:
        await room.disconnect()


# -- 1. speakers_changed --------------------------------------------------------------------------
async def speakers(args: dict[str, Any]) -> dict[str, Any]:
    """A speaks (440 Hz), C publishes silence: B's active_speakers_changed names A, never C; when A
    mutes, A leaves the speaker list."""
    b = await connect(args, "bob")
    changes: list[list[str]] = []
    b.on("active_speakers_changed", lambda speakers: changes.append([p.identity for p in speakers]))
    c = await connect(args, "carol")
    a = await connect(args, "alice")
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    await publish_audio(c, "silence", stop, tasks, loud=False)
    await wait_for(lambda: track_of(b, "carol", rtc.TrackKind.KIND_AUDIO), 20, "carol's track at bob")
    mic, _ = await publish_audio(a, "mic", stop, tasks)
    await wait_for(lambda: any("alice" in change for change in changes), 20, "alice speaking at bob")
    speaking = list(changes)
    mic.mute()
    await wait_for(lambda: changes[-1] == [], 10, "alice no longer speaking")
    await stop_all(stop, tasks, a, b, c)
    return {"changes": changes, "while_speaking": speaking}


# -- 2. canPublishSources -------------------------------------------------------------------------
async def publish_sources(args: dict[str, Any]) -> dict[str, Any]:
    """A may publish only its microphone: the mic works, the camera is refused, A stays connected and
    B only ever sees microphones (a second mic published after the refusal is the barrier)."""
    b = await connect(args, "bob")
    seen: list[int] = []
    b.on("track_published", lambda pub, participant: seen.append(int(pub.source)))
    a = await connect(args, "alice", grants={"can_publish_sources": ["microphone"]})
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    await publish_audio(a, "mic", stop, tasks)
    await wait_for(lambda: track_of(b, "alice", rtc.TrackKind.KIND_AUDIO), 20, "mic at bob")
    video = rtc.VideoSource(64, 64)
    cam = rtc.LocalVideoTrack.create_video_track("cam", video)
    camera_error = ""
    try:
        await asyncio.wait_for(
            a.local_participant.publish_track(
                cam, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
            ),
            30,
        )
    except Exception as exc:  # the SDK's PublishTrackError (or our timeout: then the test fails)
        camera_error = f"{type(exc).__name__}: {exc}"
    connected = a.connection_state == rtc.ConnectionState.CONN_CONNECTED
    sid = a.local_participant.sid
    refusal = await wait_for(
        lambda: next(
            (
                line
                for line in Path(args["sfu_log"]).read_text(errors="replace").splitlines()
                if "add_track refused" in line and f"participant={sid}" in line
            ),
            None,
        ),
        5,
        "the SFU's refusal",
    )
    _, mic2 = await publish_audio(a, "mic2", stop, tasks)
    await wait_for(lambda: b.remote_participants["alice"].track_publications.get(mic2.sid), 20, "mic2 at bob")
    lk = lk_api(args)
    try:
        alice = await lk.room.get_participant(
            api.RoomParticipantIdentity(room=args["room"], identity="alice")
        )
    finally:
        await lk.aclose()
    await stop_all(stop, tasks, a, b)
    return {
        "camera_error": camera_error,
        "refusal_logged": refusal,
        "connected_after": connected,
        "seen_at_bob": seen,
        "api_sources": sorted(int(t.source) for t in alice.tracks),
        "microphone": int(rtc.TrackSource.SOURCE_MICROPHONE),
    }


# -- 3. canSubscribe=false, canPublishData=false ---------------------------------------------------
async def no_subscribe(args: dict[str, Any]) -> dict[str, Any]:
    """N (can_subscribe=false) is told about A's track but never gets it; N's own track reaches B.
    Barrier: B has A's track and 0.5 s of its audio (both were reconciled in the same server step)."""
    n = await connect(args, "nosub", grants={"can_subscribe": False})
    n_subscribed: list[str] = []
    n.on("track_subscribed", lambda track, pub, participant: n_subscribed.append(pub.sid))
    b = await connect(args, "bob")
    a = await connect(args, "alice")
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    _, a_pub = await publish_audio(a, "mic", stop, tasks)
    _, n_pub = await publish_audio(n, "nosub-mic", stop, tasks)
    a_at_b = await wait_for(lambda: track_of(b, "alice", rtc.TrackKind.KIND_AUDIO), 20, "alice at bob")
    freq_alice = await asyncio.wait_for(receive_audio(a_at_b, 0.5), 15)
    n_at_b = await wait_for(lambda: track_of(b, "nosub", rtc.TrackKind.KIND_AUDIO), 20, "nosub at bob")
    freq_nosub = await asyncio.wait_for(receive_audio(n_at_b, 0.5), 15)
    remote = await wait_for(
        lambda: (
            n.remote_participants.get("alice")
            and n.remote_participants["alice"].track_publications.get(a_pub.sid)
        ),
        10,
        "alice's publication known at nosub",
    )
    result = {
        "nosub_subscribed": n_subscribed,
        "publication_track_at_nosub": remote.track is not None,
        "frequency_alice_at_bob": freq_alice,
        "frequency_nosub_at_bob": freq_nosub,
        "nosub_track": n_pub.sid,
        "nosub_sid": n.local_participant.sid,
    }
    await stop_all(stop, tasks, a, b, n)
    return result


async def no_data(args: dict[str, Any]) -> dict[str, Any]:
    """Q (can_publish_data=false) sends a packet: the SFU refuses it (its log says so), B never gets it;
    after UpdateParticipant grants can_publish_data, Q's next packet reaches B."""
    b = await connect(args, "bob")
    received: list[str] = []
    b.on("data_received", lambda packet: received.append(packet.data.decode()))
    q = await connect(args, "quiet", grants={"can_publish_data": False})
    await wait_for(lambda: "quiet" in b.remote_participants, 10, "quiet at bob")
    sid = q.local_participant.sid
    await q.local_participant.publish_data(b"forbidden", topic="t")
    log = Path(args["sfu_log"])
    await wait_for(
        lambda: any(
            "data packet refused" in line and f"participant={sid}" in line
            for line in log.read_text(errors="replace").splitlines()
        ),
        15,
        "the SFU's refusal",
    )
    lk = lk_api(args)
    try:
        await lk.room.update_participant(
            api.UpdateParticipantRequest(
                room=args["room"],
                identity="quiet",
                permission=api.ParticipantPermission(
                    can_subscribe=True, can_publish=True, can_publish_data=True
                ),
            )
        )
    finally:
        await lk.aclose()
    await wait_for(lambda: q.local_participant.permissions.can_publish_data, 10, "permission at quiet")
    await q.local_participant.publish_data(b"allowed", topic="t")
    await wait_for(lambda: received, 10, "allowed packet at bob")
    await q.disconnect()
    await b.disconnect()
    return {"received": received}


# -- 4. hidden ------------------------------------------------------------------------------------
async def hidden(args: dict[str, Any]) -> dict[str, Any]:
    """H (hidden) hears A, but A never learns of H (no event, not in remote_participants, not in a
    later joiner's view); the Room API lists H. Barriers: B's join and leave, seen by A after H's."""
    a = await connect(args, "alice")
    events: list[tuple[str, str]] = []
    a.on("participant_connected", lambda p: events.append(("connected", p.identity)))
    a.on("participant_disconnected", lambda p: events.append(("disconnected", p.identity)))
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    await publish_audio(a, "mic", stop, tasks)
    h = await connect(args, "ghost", grants={"hidden": True})
    heard = await wait_for(lambda: track_of(h, "alice", rtc.TrackKind.KIND_AUDIO), 20, "alice at ghost")
    freq = await asyncio.wait_for(receive_audio(heard, 0.5), 15)
    listed = await list_identities(args)
    b = await connect(args, "bob")
    await wait_for(lambda: ("connected", "bob") in events, 10, "bob at alice")
    bob_sees = sorted(b.remote_participants)
    alice_sees = sorted(a.remote_participants)
    await h.disconnect()
    await b.disconnect()
    await wait_for(lambda: ("disconnected", "bob") in events, 10, "bob left at alice")
    await stop_all(stop, tasks, a)
    return {
        "frequency_at_ghost": freq,
        "api_identities": listed,
        "alice_events": events,
        "alice_sees": alice_sees,
        "bob_sees": bob_sees,
    }


# -- 5. canUpdateOwnMetadata=false ----------------------------------------------------------------
async def _ffi_set(
    participant: rtc.LocalParticipant, *, metadata: str, attributes: dict[str, str]
) -> list[str]:
    """set_metadata / set_attributes as the SDK sends them, returning the callbacks' error fields (the
    public methods drop them)."""
    errors: list[str] = []
    handle = participant._ffi_handle.handle
    for kind in ("set_local_metadata", "set_local_attributes"):
        req = ffi_pb2.FfiRequest()
        if kind == "set_local_metadata":
            req.set_local_metadata.local_participant_handle = handle
            req.set_local_metadata.metadata = metadata
        else:
            req.set_local_attributes.local_participant_handle = handle
            for key, value in attributes.items():
                entry = req.set_local_attributes.attributes.add()
                entry.key, entry.value = key, value
        queue = FfiClient.instance.queue.subscribe()
        try:
            resp = FfiClient.instance.request(req)
            async_id = getattr(resp, kind).async_id
            cb = await asyncio.wait_for(
                queue.wait_for(lambda e, k=kind, i=async_id: getattr(e, k).async_id == i), 15
            )
        finally:
            FfiClient.instance.queue.unsubscribe(queue)
        errors.append(getattr(cb, kind).error)
    return errors


async def metadata_denied(args: dict[str, Any]) -> dict[str, Any]:
    """A without can_update_own_metadata: both updates come back with an error; B sees no change.
    Barrier: A's next track, whose ParticipantUpdate (a full record) B gets after any update would."""
    b = await connect(args, "bob")
    changes: list[str] = []
    b.on("participant_metadata_changed", lambda p, old, new: changes.append(f"metadata:{new}"))
    b.on("participant_attributes_changed", lambda changed, p: changes.append(f"attributes:{dict(changed)}"))
    a = await connect(args, "alice", grants={"can_update_own_metadata": False})
    await wait_for(lambda: "alice" in b.remote_participants, 10, "alice at bob")
    errors = await _ffi_set(a.local_participant, metadata="sneaky", attributes={"role": "admin"})
    # the public API returns (it does not hang), and changes nothing locally either
    await asyncio.wait_for(a.local_participant.set_metadata("sneaky-2"), 15)
    await asyncio.wait_for(a.local_participant.set_attributes({"role": "admin-2"}), 15)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    _, pub = await publish_audio(a, "mic", stop, tasks)
    await wait_for(lambda: b.remote_participants["alice"].track_publications.get(pub.sid), 20, "barrier")
    remote = b.remote_participants["alice"]
    result = {
        "errors": errors,
        "changes_at_bob": changes,
        "metadata_at_bob": remote.metadata,
        "attributes_at_bob": dict(remote.attributes),
        "own_metadata": a.local_participant.metadata,
        "own_attributes": dict(a.local_participant.attributes),
    }
    await stop_all(stop, tasks, a, b)
    return result


# -- 6. data streams ------------------------------------------------------------------------------
async def streams(args: dict[str, Any]) -> dict[str, Any]:
    """send_text, stream_text, send_file and stream_bytes (100 KB: several chunks) from A reach B's
    handlers intact."""
    b = await connect(args, "bob")
    texts: dict[str, str] = {}
    blobs: dict[str, str] = {}
    readers: list[asyncio.Task[None]] = []

    async def read_text(reader: rtc.TextStreamReader, sender: str) -> None:
        texts[reader.info.topic + ":" + sender] = await reader.read_all()

    async def read_bytes(reader: rtc.ByteStreamReader, sender: str) -> None:
        digest = hashlib.sha256()
        size = 0
        async for chunk in reader:
            digest.update(chunk)
            size += len(chunk)
        blobs[reader.info.name] = f"{size}:{digest.hexdigest()}"

    b.register_text_stream_handler(
        "chat", lambda reader, sender: readers.append(asyncio.create_task(read_text(reader, sender)))
    )
    b.register_text_stream_handler(
        "story", lambda reader, sender: readers.append(asyncio.create_task(read_text(reader, sender)))
    )
    b.register_byte_stream_handler(
        "files", lambda reader, sender: readers.append(asyncio.create_task(read_bytes(reader, sender)))
    )
    a = await connect(args, "alice")
    await wait_for(lambda: "bob" in a.remote_participants, 10, "bob at alice")
    rng = np.random.default_rng(7)
    blob = rng.integers(0, 256, 100 * 1024, dtype=np.uint8).tobytes()
    story = "".join(f"line {i}: {'é' * (i % 7)} the quick brown fox\n" for i in range(3000))  # ~110 KB
    expected_blob = f"{len(blob)}:{hashlib.sha256(blob).hexdigest()}"

    await a.local_participant.send_text("hello bob", topic="chat")
    writer = await a.local_participant.stream_text(topic="story")
    for start in range(0, len(story), 7000):
        await writer.write(story[start : start + 7000])
    await writer.aclose()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload.bin"
        await asyncio.to_thread(path.write_bytes, blob)
        await a.local_participant.send_file(str(path), topic="files")
    bytes_writer = await a.local_participant.stream_bytes("streamed.bin", topic="files", total_size=len(blob))
    for start in range(0, len(blob), 30000):
        await bytes_writer.write(blob[start : start + 30000])
    await bytes_writer.aclose()
    await wait_for(lambda: len(texts) == 2 and len(blobs) == 2, 20, "all streams at bob")
    await asyncio.gather(*readers)
    result = {
        "chat": texts.get("chat:alice"),
        "story_ok": texts.get("story:alice") == story,
        "story_len": len(texts.get("story:alice", "")),
        "blobs": blobs,
        "expected_blob": expected_blob,
    }
    await a.disconnect()
    await b.disconnect()
    return result


SCENARIOS = {
    "speakers": speakers,
    "publish_sources": publish_sources,
    "no_subscribe": no_subscribe,
    "no_data": no_data,
    "hidden": hidden,
    "metadata_denied": metadata_denied,
    "streams": streams,
}
