"""Track egress end to end: official clients publish, ``livekit-api``'s EgressService records.

One stack with every service (an egress worker too), a real S3 server (SeaweedFS) and a webhook
endpoint, shared by the tests here. An SDK participant publishes a 440 Hz tone (Opus) and a
320x240 video (VP8); StartTrackEgress records each without transcoding (the SFU's RTP tap → the
worker's PyAV muxer) to OGG / WebM in S3 or the worker's local directory. PyAV (FFmpeg's demuxers
and decoders) judges the files: codec, size, duration within 10 % of the recording time, the
tone's dominant frequency. The ``egress_*`` webhooks are checked with the SDK's WebhookReceiver.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import boto3
import numpy as np
import pytest
import pytest_asyncio
from livekit import api, rtc
from livekit.protocol import egress as lk

from parley.auth import Claims, VideoGrant, create_token
from parley.devprocs import SERVICES, SeaweedS3, free_port
from parley.testing import Stack, load_script, poll_until

pytestmark = [pytest.mark.integration, pytest.mark.sdk]

sources = load_script(Path(__file__).with_name("sdk_sources.py"), "sdk_sources")

BUCKET = "recordings"
WIDTH, HEIGHT = 320, 240
RECORD_S = 4.0


@dataclass
class Hooks:
    """A webhook endpoint in a thread (it outlives each test's event loop): raw bodies + auth."""

    port: int = field(default_factory=free_port)
    received: list[tuple[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                hooks.received.append((body, self.headers.get("Authorization", "")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def events(self, stack: Stack, egress_id: str) -> list[str]:
        """The verified events about one egress, in arrival order."""
        receiver = api.WebhookReceiver(api.TokenVerifier(stack.api_key, stack.api_secret))
        out = []
        for body, auth in list(self.received):
            event = receiver.receive(body, auth)  # raises on a bad signature
            if event.egress_info.egress_id == egress_id:
                out.append(event.event)
        return out


@dataclass
class Env:
    stack: Stack
    s3: SeaweedS3
    hooks: Hooks
    local_dir: Path

    def s3_output(self, **kw: Any) -> api.S3Upload:
        return api.S3Upload(
            access_key=self.s3.access_key,
            secret=self.s3.secret_key,
            region="us-east-1",
            endpoint=self.s3.endpoint,
            bucket=BUCKET,
            force_path_style=True,
            **kw,
        )

    def download(self, key: str) -> bytes:
        client = boto3.client(
            "s3",
            endpoint_url=self.s3.endpoint,
            aws_access_key_id=self.s3.access_key,
            aws_secret_access_key=self.s3.secret_key,
            region_name="us-east-1",
        )
        body: bytes = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("egress-track")
    s3 = SeaweedS3(data_dir=base / "seaweed", log_path=base / "seaweed.log")
    s3.start()
    boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    hooks = Hooks()
    hooks.start()
    local_dir = base / "local-recordings"
    stack = Stack(
        log_dir=base / "stack",
        services=SERVICES,
        config={
            "webhook": {"urls": [hooks.url]},
            "egress_worker": {"local_dir": str(local_dir), "work_dir": str(base / "work")},
        },
    )
    try:
        stack.start()
        yield Env(stack, s3, hooks, local_dir)
    finally:
        stack.stop()
        hooks.stop()
        s3.close()


@dataclass
class Publisher:
    room: rtc.Room
    audio_sid: str
    video_sid: str
    tasks: list[asyncio.Task[None]]

    async def leave(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.room.disconnect()


async def _publish(stack: Stack, room_name: str) -> Publisher:
    token = create_token(
        stack.api_key,
        stack.api_secret,
        Claims(identity="alice", name="alice", video=VideoGrant(room_join=True, room=room_name)),
    )
    room = rtc.Room()
    await room.connect(stack.ws_url, token)
    audio = rtc.AudioSource(48000, 1)
    video = rtc.VideoSource(WIDTH, HEIGHT)
    tasks = [
        asyncio.create_task(sources.tone(audio)),
        asyncio.create_task(sources.frames(video, WIDTH, HEIGHT)),
    ]
    mic = await room.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("mic", audio),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE),
    )
    cam = await room.local_participant.publish_track(
        rtc.LocalVideoTrack.create_video_track("cam", video),
        rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False, video_codec=rtc.VideoCodec.VP8
        ),
    )
    return Publisher(room, mic.sid, cam.sid, tasks)


@pytest_asyncio.fixture
async def lkapi(env: Env) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(env.stack.http_url, env.stack.api_key, env.stack.api_secret)
    yield client
    await client.aclose()


async def _info(lkapi: api.LiveKitAPI, egress_id: str) -> lk.EgressInfo:
    items = (await lkapi.egress.list_egress(api.ListEgressRequest(egress_id=egress_id))).items
    assert len(items) == 1
    return items[0]


async def _until(lkapi: api.LiveKitAPI, egress_id: str, *statuses: int, timeout: float = 30) -> lk.EgressInfo:
    found: list[lk.EgressInfo] = []

    async def reached() -> bool:
        info = await _info(lkapi, egress_id)
        found[:] = [info]
        return info.status in statuses

    names = [lk.EgressStatus.Name(s) for s in statuses]  # type: ignore[arg-type]
    await poll_until(reached, timeout=timeout, interval=0.2, message=f"{egress_id} {names}")
    return found[0]


def _probe(data: bytes, suffix: str) -> tuple[str, float, list[Any]]:
    """(codec, container duration in s, decoded frames) with FFmpeg through PyAV."""
    with av.open(io.BytesIO(data), mode="r", format=suffix) as container:
        stream = container.streams[0]
        codec = stream.codec_context.name
        duration = (container.duration or 0) / 1e6
        frames = list(container.decode(stream))
    return codec, duration, frames


def _dominant_hz(frames: list[Any]) -> float:
    samples = np.concatenate([f.to_ndarray()[0] for f in frames]).astype(np.float64)
    rate = frames[0].sample_rate
    samples = samples[len(samples) // 4 :]  # past the encoder's start
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


async def test_track_egress_records_opus_and_vp8_to_s3_without_transcoding(
    env: Env, lkapi: api.LiveKitAPI
) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="rec-s3"))
    alice = await _publish(env.stack, "rec-s3")
    try:
        audio_req = api.TrackEgressRequest(
            room_name="rec-s3",
            track_id=alice.audio_sid,
            file=api.DirectFileOutput(filepath="{room_name}/{track_id}.ogg", s3=env.s3_output()),
        )
        video_req = api.TrackEgressRequest(
            room_name="rec-s3",
            track_id=alice.video_sid,
            file=api.DirectFileOutput(filepath="{room_name}/video", s3=env.s3_output()),
        )
        audio = await lkapi.egress.start_track_egress(audio_req)
        video = await lkapi.egress.start_track_egress(video_req)
        for started in (audio, video):
            assert started.status == lk.EgressStatus.EGRESS_STARTING
            assert started.source_type == lk.EgressSourceType.EGRESS_SOURCE_TYPE_SDK
            assert started.track.file.s3.secret == "{secret}"  # the stored request is redacted
        await _until(lkapi, audio.egress_id, lk.EgressStatus.EGRESS_ACTIVE)
        await _until(lkapi, video.egress_id, lk.EgressStatus.EGRESS_ACTIVE)
        await asyncio.sleep(RECORD_S)
        stopped_at_ns: dict[str, int] = {}
        stopping = []
        for e in (audio, video):
            stopped_at_ns[e.egress_id] = time.time_ns()
            stopping.append(await lkapi.egress.stop_egress(api.StopEgressRequest(egress_id=e.egress_id)))
        assert [s.status for s in stopping] == [lk.EgressStatus.EGRESS_ENDING] * 2
        done_audio = await _until(lkapi, audio.egress_id, lk.EgressStatus.EGRESS_COMPLETE)
        done_video = await _until(lkapi, video.egress_id, lk.EgressStatus.EGRESS_COMPLETE)
    finally:
        await alice.leave()

    for done, key, fmt, codec in (
        (done_audio, f"rec-s3/{alice.audio_sid}.ogg", "ogg", "opus"),
        (done_video, "rec-s3/video.webm", "webm", "vp8"),
    ):
        assert len(done.file_results) == 1, done
        result = done.file_results[0]
        assert result.filename == key
        assert result.location == f"{env.s3.endpoint}/{BUCKET}/{key}"
        assert done.details == "End reason: StopEgress API"
        assert result.started_at > 0 and result.ended_at >= result.started_at
        recorded_s = (stopped_at_ns[done.egress_id] - result.started_at) / 1e9  # first frame -> stop
        assert abs(result.duration / 1e9 - recorded_s) <= 0.1 * recorded_s, (result.duration, recorded_s)
        data = env.download(key)
        assert result.size == len(data) > 0
        found, duration, frames = _probe(data, fmt)
        assert found == codec  # the publisher's codec: not transcoded
        assert abs(duration - recorded_s) <= 0.1 * recorded_s, (key, duration, recorded_s)
        assert frames
        if codec == "opus":
            assert abs(_dominant_hz(frames) - 440) < 5
        else:
            assert (frames[0].width, frames[0].height) == (WIDTH, HEIGHT)
            assert len(frames) >= 0.5 * 30 * recorded_s  # about 30 fps from the SDK's encoder

    await poll_until(
        lambda: env.hooks.events(env.stack, audio.egress_id)[-1:] == ["egress_ended"],
        timeout=10,
        message="egress_ended webhook",
    )
    told = env.hooks.events(env.stack, audio.egress_id)
    assert told[0] == "egress_started" and told.count("egress_started") == 1
    assert told.count("egress_ended") == 1 and "egress_updated" in told  # ACTIVE, ENDING


async def test_a_track_that_goes_ends_its_egress_with_source_closed_in_the_local_directory(
    env: Env, lkapi: api.LiveKitAPI
) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="rec-local"))
    alice = await _publish(env.stack, "rec-local")
    try:
        started = await lkapi.egress.start_track_egress(
            api.TrackEgressRequest(
                room_name="rec-local", track_id=alice.audio_sid, file=api.DirectFileOutput(filepath="local/")
            )
        )
        await _until(lkapi, started.egress_id, lk.EgressStatus.EGRESS_ACTIVE)
        await asyncio.sleep(2)
        await alice.room.local_participant.unpublish_track(alice.audio_sid)
        done = await _until(lkapi, started.egress_id, lk.EgressStatus.EGRESS_COMPLETE)
    finally:
        await alice.leave()
    assert done.details == "End reason: Source closed"
    result = done.file_results[0]
    assert result.filename.startswith(f"local/{alice.audio_sid}-") and result.filename.endswith(".ogg")
    path = env.local_dir / result.filename
    assert result.location == str(path)
    codec, duration, frames = _probe(path.read_bytes(), "ogg")
    assert codec == "opus" and duration > 1.5 and frames


async def test_bad_requests_fail_clearly_and_nothing_else_is_affected(
    env: Env, lkapi: api.LiveKitAPI
) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="rec-bad"))
    alice = await _publish(env.stack, "rec-bad")
    try:
        # an unknown track: the egress starts, the node answers not found, the egress FAILs
        unknown = await lkapi.egress.start_track_egress(
            api.TrackEgressRequest(
                room_name="rec-bad", track_id="TR_nope", file=api.DirectFileOutput(filepath="x.ogg")
            )
        )
        failed = await _until(lkapi, unknown.egress_id, lk.EgressStatus.EGRESS_FAILED)
        assert "TR_nope" in failed.error and failed.error_code == 404, failed

        # storage that does not answer: recorded, then FAILED with the upload's reason
        dead = api.S3Upload(
            access_key="k",
            secret="s",
            endpoint=f"http://127.0.0.1:{free_port()}",
            bucket="b",
            force_path_style=True,
        )
        unreachable = await lkapi.egress.start_track_egress(
            api.TrackEgressRequest(
                room_name="rec-bad",
                track_id=alice.audio_sid,
                file=api.DirectFileOutput(filepath="y.ogg", s3=dead),
            )
        )
        await _until(lkapi, unreachable.egress_id, lk.EgressStatus.EGRESS_ACTIVE)
        await asyncio.sleep(1)
        await lkapi.egress.stop_egress(api.StopEgressRequest(egress_id=unreachable.egress_id))
        failed = await _until(lkapi, unreachable.egress_id, lk.EgressStatus.EGRESS_FAILED, timeout=60)
        assert failed.error.startswith("upload to s3") and failed.details == "End reason: Failure", failed

        # what this worker cannot do is refused before anything starts
        with pytest.raises(api.TwirpError) as refused:
            await lkapi.egress.start_track_egress(
                api.TrackEgressRequest(room_name="rec-bad", track_id=alice.audio_sid, websocket_url="ws://x")
            )
        assert refused.value.code == "invalid_argument"
        assert refused.value.message == "websocket track egress is not yet supported"

        # the room and its publisher are untouched; a good egress still works
        participants = await lkapi.room.list_participants(api.ListParticipantsRequest(room="rec-bad"))
        assert [p.identity for p in participants.participants] == ["alice"]
        good = await lkapi.egress.start_track_egress(
            api.TrackEgressRequest(
                room_name="rec-bad", track_id=alice.audio_sid, file=api.DirectFileOutput(filepath="good.ogg")
            )
        )
        await _until(lkapi, good.egress_id, lk.EgressStatus.EGRESS_ACTIVE)
        await lkapi.egress.stop_egress(api.StopEgressRequest(egress_id=good.egress_id))
        await _until(lkapi, good.egress_id, lk.EgressStatus.EGRESS_COMPLETE)
    finally:
        await alice.leave()
    listed = await lkapi.egress.list_egress(api.ListEgressRequest(room_name="rec-bad"))
    assert sorted(lk.EgressStatus.Name(i.status) for i in listed.items) == [
        "EGRESS_COMPLETE",
        "EGRESS_FAILED",
        "EGRESS_FAILED",
    ]
    assert (env.local_dir / "good.ogg").exists()


async def test_auto_egress_from_create_room_records_every_track(env: Env, lkapi: api.LiveKitAPI) -> None:
    auto = api.RoomEgress(tracks=api.AutoTrackEgress(filepath="auto/{room_name}"))
    await lkapi.room.create_room(api.CreateRoomRequest(name="rec-auto", egress=auto))
    alice = await _publish(env.stack, "rec-auto")
    try:

        async def both_active() -> list[lk.EgressInfo]:
            items = (await lkapi.egress.list_egress(api.ListEgressRequest(room_name="rec-auto"))).items
            active = [i for i in items if i.status == lk.EgressStatus.EGRESS_ACTIVE]
            return list(items) if len(active) == 2 else []

        infos = await poll_until(both_active, timeout=30, message="an active egress per track")
        assert sorted(i.track.track_id for i in infos) == sorted([alice.audio_sid, alice.video_sid])
        await asyncio.sleep(2)
    finally:
        await alice.leave()  # the tracks go: each egress ends "Source closed"

    async def both_complete() -> list[lk.EgressInfo]:
        items = (await lkapi.egress.list_egress(api.ListEgressRequest(room_name="rec-auto"))).items
        done = [i for i in items if i.status == lk.EgressStatus.EGRESS_COMPLETE]
        return done if len(done) == 2 else []

    done = await poll_until(both_complete, timeout=30, message="both complete")
    names = sorted(i.file_results[0].filename for i in done)
    assert names == sorted([f"auto/rec-auto-{alice.audio_sid}.ogg", f"auto/rec-auto-{alice.video_sid}.webm"])
    for info in done:
        assert info.details == "End reason: Source closed"
        assert (env.local_dir / info.file_results[0].filename).stat().st_size > 0
