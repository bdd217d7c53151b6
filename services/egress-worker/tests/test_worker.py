"""The egress worker on a MemoryBus: offers, controls, reports, a recording from a fake RTP tap.

The controller's side is a recorder of reports here (its real behaviour is tested in
``services/egress``); the SFU's tap is ``FakeSfu``, a real UDP sender of a real Opus stream.
The file the worker writes is judged by FFmpeg (PyAV)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import pytest_asyncio
from aiortc.rtp import RtcpByePacket, RtcpPacket, RtcpPsfbPacket, RtcpRrPacket, RtpPacket, is_rtcp
from livekit.protocol import egress as lk

from parley.bus import Delivery, ErrorCode, MemoryBus, RpcError, Subscription, rpcs, subjects
from parley.egress_worker.checkpoint import Checkpoint
from parley.egress_worker.config import EgressWorkerSection
from parley.egress_worker.media import TrackCodec, TrackRecorder
from parley.egress_worker.worker import EgressWorker
from parley.protocol.gen.egress.v1 import egress_pb2 as eg
from parley.protocol.gen.sfu.v1 import node_pb2
from parley.testing import poll_until

pytestmark = pytest.mark.unit

S = lk.EgressStatus
WORKER = "EGW_unit"


# -- a test double of the SFU's RTP tap: serves TapTrack; a started tap sends a real libopus
# stream (440 Hz) as plain RTP from its own UDP socket, paced in real time, records the RTCP it
# hears and can send a BYE.
SSRC = 0x1234ABCD
PT = 111


def opus_packets(seconds: float, hz: float = 440.0) -> list[bytes]:
    """20 ms Opus packets of a sine (48 kHz stereo), from FFmpeg's libopus."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = 48000
    encoder.layout = "stereo"
    encoder.format = "s16"
    encoder.open()
    out: list[bytes] = []
    for i in range(int(seconds * 50)):
        t = (np.arange(960) + i * 960) / 48000
        tone = (np.sin(2 * np.pi * hz * t) * 10000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.stack([tone, tone]).T.reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = 48000
        frame.pts = i * 960
        out += [bytes(p) for p in encoder.encode(frame)]
    return out


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, rtcp: list[Any]) -> None:
        self.rtcp = rtcp

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if is_rtcp(data):
            self.rtcp.extend(RtcpPacket.parse(data))


@dataclass
class FakeTap:
    transport: asyncio.DatagramTransport
    destination: tuple[str, int]
    task: asyncio.Task[None] | None = None
    sent: int = 0


@dataclass
class FakeSfu:
    bus: MemoryBus
    packets: list[bytes]
    tracks: set[str] = field(default_factory=lambda: {"TR_audio"})
    requests: list[node_pb2.TapRequest] = field(default_factory=list)
    rtcp: list[Any] = field(default_factory=list)
    taps: dict[str, FakeTap] = field(default_factory=dict)
    _sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.bus.serve(rpcs.TAP_TRACK, self._tap)

    async def aclose(self) -> None:
        for tap in self.taps.values():
            await self._end(tap)
        if self._sub is not None:
            await self._sub.unsubscribe()

    async def _tap(self, req: node_pb2.TapRequest) -> node_pb2.TapResponse:
        self.requests.append(req)
        if req.stop:
            tap = self.taps.pop(req.tap_id, None)
            if tap is not None:
                await self._end(tap)
            return node_pb2.TapResponse()
        if req.track_sid not in self.tracks:
            raise RpcError(ErrorCode.NOT_FOUND, f"track {req.track_sid} not found in room {req.room_name}")
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Socket(self.rtcp), local_addr=("127.0.0.1", 0)
        )
        tap = FakeTap(transport, (req.host, req.port))
        tap.task = asyncio.create_task(self._send(tap))
        self.taps[req.tap_id] = tap
        host, port = transport.get_extra_info("sockname")[:2]
        return node_pb2.TapResponse(
            mime_type="audio/opus", payload_type=PT, clock_rate=48000, channels=2, fmtp="minptime=10;useinbandfec=1",
            ssrc=SSRC, source_host=host, source_port=port,
        )  # fmt: skip

    async def _send(self, tap: FakeTap) -> None:
        for i, payload in enumerate(self.packets):
            packet = RtpPacket(
                payload_type=PT, sequence_number=(1000 + i) & 0xFFFF, timestamp=(5000 + i * 960)
            )
            packet.ssrc, packet.payload = SSRC, payload
            tap.transport.sendto(packet.serialize(), tap.destination)
            tap.sent += 1
            await asyncio.sleep(0.02)

    def bye(self, tap_id: str) -> None:
        tap = self.taps[tap_id]
        tap.transport.sendto(bytes(RtcpByePacket(sources=[SSRC])), tap.destination)

    async def _end(self, tap: FakeTap) -> None:
        if tap.task is not None:
            tap.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tap.task
        tap.transport.close()


@dataclass
class Controller:
    """Answers EgressReport like the controller (ack), failing the first ``fail`` calls."""

    fail: int = 0
    unknown: int = 0
    """Answer the first ``unknown`` (after ``fail``) as not this worker's job (placement not committed)."""
    reports: list[eg.EgressReport] = field(default_factory=list)
    calls: int = 0

    async def report(self, report: eg.EgressReport) -> eg.ReportAck:
        self.calls += 1
        if self.calls <= self.fail:
            raise RpcError(ErrorCode.UNAVAILABLE, "controller restarting")
        if self.calls <= self.fail + self.unknown:
            return eg.ReportAck(unknown=True)
        self.reports.append(report)
        return eg.ReportAck()

    def statuses(self, egress_id: str) -> list[int]:
        return [r.status for r in self.reports if r.egress_id == egress_id]


@dataclass
class Env:
    bus: MemoryBus
    worker: EgressWorker
    sfu: FakeSfu
    controller: Controller
    local_dir: Path

    async def offer(
        self, egress_id: str, request: lk.TrackEgressRequest, cost: float = 0.5
    ) -> eg.OfferResult:
        job = eg.EgressJob(egress_id=egress_id, room_id="RM_1", cost=cost)
        job.request.track.CopyFrom(request)
        job.info.egress_id = egress_id
        job.info.status = S.EGRESS_STARTING
        return await self.bus.call(rpcs.OFFER_EGRESS, job, topic=WORKER)

    async def stop(self, egress_id: str) -> lk.EgressInfo:
        return await self.bus.call(
            rpcs.EGRESS_JOB_CONTROL, eg.JobControl(egress_id=egress_id, stop=True), topic=WORKER
        )


PACKETS = opus_packets(6.0)


@pytest_asyncio.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    bus = MemoryBus("egress-worker-unit")
    controller = Controller()
    sub = await bus.serve(rpcs.EGRESS_REPORT, controller.report)
    sfu = FakeSfu(bus, PACKETS)
    await sfu.start()
    section = EgressWorkerSection(
        capacity=2.0, local_dir=str(tmp_path / "rec"), work_dir=str(tmp_path / "work"), source_timeout=1.0,
        start_timeout=3.0,
    )  # fmt: skip
    worker = EgressWorker(bus, WORKER, section)
    await worker.start()
    yield Env(bus, worker, sfu, controller, tmp_path / "rec")
    await worker.drain()
    await worker.aclose()
    await sfu.aclose()
    await sub.unsubscribe()


def _request(track: str = "TR_audio", path: str = "{room_name}/{track_id}") -> lk.TrackEgressRequest:
    return lk.TrackEgressRequest(room_name="standup", track_id=track, file=lk.DirectFileOutput(filepath=path))


async def test_a_recording_from_accept_to_complete(env: Env) -> None:
    accepted = await env.offer("EG_a", _request())
    assert accepted.accepted and accepted.info.egress_id == "EG_a"
    await poll_until(lambda: S.EGRESS_ACTIVE in env.controller.statuses("EG_a"), timeout=5, message="ACTIVE")
    active = next(r for r in env.controller.reports if r.status == S.EGRESS_ACTIVE)
    assert active.file_results[0].filename == "standup/TR_audio.ogg" and active.file_results[0].started_at > 0
    await asyncio.sleep(2.0)
    stopping = await env.stop("EG_a")
    assert (stopping.status, stopping.details) == (S.EGRESS_ENDING, "End reason: StopEgress API")
    await poll_until(
        lambda: S.EGRESS_COMPLETE in env.controller.statuses("EG_a"), timeout=5, message="COMPLETE"
    )
    assert env.controller.statuses("EG_a") == [S.EGRESS_ACTIVE, S.EGRESS_ENDING, S.EGRESS_COMPLETE]
    complete = env.controller.reports[-1]
    result = complete.file_results[0]
    path = env.local_dir / "standup/TR_audio.ogg"
    assert result.location == str(path.resolve()) and result.size == path.stat().st_size
    assert 1.8 < result.duration / 1e9 < 3.0
    # the SFU heard receiver reports (keep-alive) and the tap was stopped
    assert any(isinstance(p, RtcpRrPacket) for p in env.sfu.rtcp)
    assert not any(isinstance(p, RtcpPsfbPacket) for p in env.sfu.rtcp)  # audio: no PLI
    assert [r.stop for r in env.sfu.requests] == [False, True]
    # FFmpeg reads the file: Opus, the duration reported, the tone
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        assert container.duration is not None
        assert abs(container.duration / 1e6 - result.duration / 1e9) < 0.1
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)]).astype(float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    assert abs(np.fft.rfftfreq(len(samples), 1 / 48000)[int(np.argmax(spectrum))] - 440) < 5
    assert not env.worker.jobs


async def test_a_bye_from_the_tap_ends_with_source_closed(env: Env) -> None:
    await env.offer("EG_b", _request())
    await poll_until(lambda: S.EGRESS_ACTIVE in env.controller.statuses("EG_b"), timeout=5, message="ACTIVE")
    await asyncio.sleep(0.5)
    env.sfu.bye("EG_b")
    await poll_until(
        lambda: S.EGRESS_COMPLETE in env.controller.statuses("EG_b"), timeout=5, message="COMPLETE"
    )
    assert env.controller.reports[-1].details == "End reason: Source closed"
    assert [r.stop for r in env.sfu.requests] == [False]  # the tap is already gone: no stop sent


async def test_an_unknown_track_fails_with_the_nodes_reason(env: Env) -> None:
    await env.offer("EG_c", _request(track="TR_nope"))
    await poll_until(lambda: S.EGRESS_FAILED in env.controller.statuses("EG_c"), timeout=5, message="FAILED")
    failed = env.controller.reports[-1]
    assert (failed.error, failed.error_code) == ("track TR_nope not found in room standup", 404)


async def test_stop_before_any_media_aborts(env: Env) -> None:
    env.sfu.packets = []
    await env.offer("EG_d", _request())
    await poll_until(lambda: bool(env.sfu.taps), timeout=5, message="tapped")
    stopped = await env.stop("EG_d")
    assert (stopped.status, stopped.error, stopped.error_code) == (
        S.EGRESS_ABORTED,
        "Stop called before pipeline could start",
        412,
    )
    await poll_until(
        lambda: S.EGRESS_ABORTED in env.controller.statuses("EG_d"), timeout=5, message="ABORTED"
    )
    assert not list(env.local_dir.rglob("*.ogg"))


async def test_offers_it_cannot_take_are_refused(env: Env) -> None:
    composite = eg.EgressJob(egress_id="EG_r", cost=1.0)
    composite.request.room_composite.room_name = "standup"
    refused = await env.bus.call(rpcs.OFFER_EGRESS, composite, topic=WORKER)
    assert (refused.accepted, refused.error_code) == (False, "invalid_argument")
    assert refused.error == "only track egress runs on this worker yet"
    websocket = await env.offer(
        "EG_w", lk.TrackEgressRequest(room_name="r", track_id="TR_audio", websocket_url="ws://x")
    )
    assert websocket.error == "websocket track egress is not yet supported"
    too_big = await env.offer("EG_big", _request(), cost=1.7)  # 2 cores * 0.8 = 1.6
    assert (too_big.accepted, too_big.error_code, too_big.error) == (
        False,
        "resource_exhausted",
        "not enough CPU",
    )
    gcp = _request()
    gcp.file.gcp.bucket = "b"
    refused_storage = await env.offer("EG_g", gcp)
    assert refused_storage.error == "gcp upload is not yet supported"
    env.worker.draining = True
    draining = await env.offer("EG_x", _request())
    assert (draining.error_code, draining.error) == ("unavailable", "server is shutting down")
    assert not env.worker.jobs


async def test_an_accepted_job_counts_as_pending_and_in_the_heartbeat(env: Env) -> None:
    stats: list[eg.WorkerStats] = []

    async def on_stats(delivery: Delivery) -> None:
        stats.append(eg.WorkerStats.FromString(delivery.data))

    sub = await env.bus.subscribe(subjects.EGRESS_WORKERS, on_stats)
    await env.offer("EG_p", _request())
    assert env.worker.pending() == 0.5
    second = await env.offer("EG_p", _request())  # a repeated offer (lost answer) is the same job
    assert second.accepted and len(env.worker.jobs) == 1
    await env.worker.beat()
    await poll_until(lambda: any(s.jobs for s in stats), timeout=2, message="a heartbeat with the job")
    assert [(j.egress_id, j.part) for j in stats[-1].jobs] == [("EG_p", 0)]
    assert stats[-1].pending == 0.5 and stats[-1].capacity == 2.0
    await sub.unsubscribe()


async def test_reports_are_retried_until_a_controller_answers(env: Env) -> None:
    env.controller.fail = 2
    await env.offer("EG_r2", _request())
    await poll_until(lambda: S.EGRESS_ACTIVE in env.controller.statuses("EG_r2"), timeout=8, message="ACTIVE")
    assert env.controller.calls == 3


async def test_drain_finishes_running_recordings(env: Env) -> None:
    await env.offer("EG_e", _request(path="drained.ogg"))
    await poll_until(lambda: S.EGRESS_ACTIVE in env.controller.statuses("EG_e"), timeout=5, message="ACTIVE")
    await asyncio.sleep(0.5)
    await env.worker.drain()
    assert env.controller.statuses("EG_e")[-1] == S.EGRESS_COMPLETE
    assert (env.local_dir / "drained.ogg").stat().st_size > 0


async def test_control_of_an_unknown_job_is_not_found(env: Env) -> None:
    with pytest.raises(RpcError) as missing:
        await env.stop("EG_none")
    assert missing.value.code == ErrorCode.NOT_FOUND


def _partial_recording(path: Path, seconds: float) -> None:
    """An OGG a lost worker left: recorded in place up to its last frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    recorder = TrackRecorder(str(path), TrackCodec("audio/opus", 48000, 2))
    for i, payload in enumerate(opus_packets(seconds)):
        packet = RtpPacket(payload_type=PT, sequence_number=i, timestamp=i * 960)
        packet.payload = payload
        recorder.push(packet, i * 0.02)
    recorder.close()


async def test_a_continued_part_reports_the_lost_parts_file_then_records_its_own(env: Env) -> None:
    lost = env.local_dir / "standup/TR_audio.ogg"
    _partial_recording(lost, 1.5)
    job = eg.EgressJob(egress_id="EG_k", room_id="RM_1", cost=0.5, part=1)
    job.request.track.CopyFrom(_request())
    job.previous = Checkpoint("standup/TR_audio.ogg", str(lost), 1_000).encode()
    assert (await env.bus.call(rpcs.OFFER_EGRESS, job, topic=WORKER)).accepted
    await poll_until(lambda: len(env.controller.statuses("EG_k")) >= 2, timeout=5, message="two reports")
    previous, own = env.controller.reports[:2]
    assert previous.part == own.part == 1 and previous.status == own.status == S.EGRESS_ACTIVE
    info = previous.file_results[0]
    assert (info.filename, info.started_at, info.location) == (
        "standup/TR_audio.ogg",
        1_000,
        str(lost.resolve()),
    )
    assert info.size == lost.stat().st_size and abs(info.duration / 1e9 - 1.5) < 0.05
    assert own.file_results[0].filename == "standup/TR_audio-1.ogg"  # this part's own file
    await env.stop("EG_k")
    await poll_until(
        lambda: S.EGRESS_COMPLETE in env.controller.statuses("EG_k"), timeout=5, message="COMPLETE"
    )
    assert (env.local_dir / "standup/TR_audio-1.ogg").stat().st_size > 0


async def test_a_stopped_job_whose_worker_was_lost_is_finalized(env: Env) -> None:
    lost = env.local_dir / "final.ogg"
    _partial_recording(lost, 1.0)
    job = eg.EgressJob(egress_id="EG_f", cost=0.5, part=1, finalize=True)
    job.request.track.CopyFrom(_request(path="final.ogg"))
    job.previous = Checkpoint("final.ogg", str(lost), 5).encode()
    assert (await env.bus.call(rpcs.OFFER_EGRESS, job, topic=WORKER)).accepted
    await poll_until(
        lambda: S.EGRESS_COMPLETE in env.controller.statuses("EG_f"), timeout=5, message="COMPLETE"
    )
    assert env.controller.statuses("EG_f") == [S.EGRESS_ACTIVE, S.EGRESS_COMPLETE]
    assert env.controller.reports[0].file_results[0].size == lost.stat().st_size
    assert not env.sfu.requests  # nothing recorded anew


async def test_a_lost_part_recorded_for_upload_is_reported_lost(env: Env) -> None:
    job = eg.EgressJob(egress_id="EG_l", cost=0.5, part=1)
    job.request.track.CopyFrom(_request())
    job.previous = Checkpoint("x.ogg", "/nonexistent/work/EG_l-0.ogg", 5).encode()
    assert (await env.bus.call(rpcs.OFFER_EGRESS, job, topic=WORKER)).accepted
    await poll_until(lambda: S.EGRESS_ACTIVE in env.controller.statuses("EG_l"), timeout=5, message="ACTIVE")
    assert [f.filename for r in env.controller.reports for f in r.file_results] == ["standup/TR_audio-1.ogg"]


async def test_a_report_before_the_placement_is_recorded_is_sent_again(env: Env) -> None:
    """The controller writes the placement after the offer's answer: an early report finds the job
    unknown and is sent again (with a new seq) until it lands."""
    env.controller.unknown = 2
    await env.offer("EG_u", _request())
    await poll_until(lambda: S.EGRESS_ACTIVE in env.controller.statuses("EG_u"), timeout=8, message="ACTIVE")
    assert env.controller.calls == 3
