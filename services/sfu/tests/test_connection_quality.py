"""Connection quality: LiveKit's scorer over LinkReports (thresholds, LOST only for silent up tracks
that should flow) and who receives which connection_quality update."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf.message import Message
from livekit.protocol import models, rtc

from parley.bus import Rpc
from parley.observability import TaskSet
from parley.protocol.gen.signal.v1 import relay_pb2
from parley.sfu.config import SfuConfig, SfuSection
from parley.sfu.connection_quality import (
    DRY_LOST,
    DRY_POOR,
    ConnectionQualityMonitor,
    TrackScorer,
    loss_weight,
    mos_of,
    worst,
)
from parley.sfu.media.fakes import FakePublishedMedia, FakeSubscribedMedia
from parley.sfu.media.interfaces import NO_LAYER, LinkReport
from parley.sfu.participant import Participant, PublishedTrack
from parley.sfu.room import Room, RoomHost
from parley.sfu.state_reporter import StateReporter
from parley.testing import poll_until

pytestmark = pytest.mark.unit

Q = models.ConnectionQuality


def report(
    loss: float = 0.0,
    *,
    jitter: float = 2.0,
    rtt: float | None = 40.0,
    bps: int = 1_000_000,
    expected: int = 0,
) -> LinkReport:
    return LinkReport(
        fraction_lost=loss, jitter_ms=jitter, rtt_ms=rtt, bitrate_bps=bps, expected_bps=expected
    )


def steady(scorer: TrackScorer, r: LinkReport | None, times: int = 10) -> TrackScorer:
    for _ in range(times):
        scorer.update(r, active=True)
    return scorer


def video_up() -> TrackScorer:
    return TrackScorer(loss_weight("video"), upstream=True)


def audio_up() -> TrackScorer:
    return TrackScorer(loss_weight("audio", "audio/opus"), upstream=True)


# -- the scorer ------------------------------------------------------------------------------------
def test_clean_link_is_excellent() -> None:
    for scorer in (video_up(), audio_up()):
        steady(scorer, report())
        assert scorer.quality == Q.EXCELLENT and scorer.mos > 4.4


def test_five_percent_loss_is_good_twenty_is_poor() -> None:
    # LiveKit: video falls to GOOD at 2 % and POOR at 6 %; Opus+FEC at 3.75 % and 11.25 %
    assert steady(video_up(), report(0.05)).quality == Q.GOOD
    assert steady(audio_up(), report(0.05)).quality == Q.GOOD
    assert steady(video_up(), report(0.07)).quality == Q.POOR
    assert steady(video_up(), report(0.20)).quality == Q.POOR
    assert steady(audio_up(), report(0.20)).quality == Q.POOR
    assert steady(video_up(), report(0.01)).quality == Q.EXCELLENT


def test_drops_fast_recovers_slowly() -> None:
    scorer = steady(video_up(), report(0.20))
    scorer.update(report(), active=True)
    assert scorer.quality != Q.EXCELLENT
    steady(scorer, report(), 5)
    assert scorer.quality == Q.EXCELLENT


def test_delay_counts_only_when_large() -> None:
    assert steady(video_up(), report(rtt=300.0, jitter=20.0)).quality == Q.EXCELLENT
    assert steady(video_up(), report(rtt=1200.0, jitter=100.0)).quality == Q.POOR


def test_bitrate_far_below_expected_degrades_a_down_track() -> None:
    down = TrackScorer(loss_weight("video"), upstream=False, score_bitrate=True)
    assert steady(down, report(bps=1_000_000, expected=1_200_000)).quality == Q.EXCELLENT
    assert steady(down, report(bps=200_000, expected=1_200_000)).quality == Q.GOOD
    assert steady(down, report(bps=50_000, expected=2_000_000)).quality == Q.POOR


def test_a_down_track_paused_for_bandwidth_is_poor_at_once_and_recovers_when_it_flows() -> None:
    down = TrackScorer(loss_weight("video"), upstream=False, score_bitrate=True)
    steady(down, report(bps=1_000_000, expected=1_200_000))
    paused = LinkReport(
        fraction_lost=0.0,
        jitter_ms=2.0,
        rtt_ms=40.0,
        bitrate_bps=0,
        expected_bps=1_200_000,
        bandwidth_paused=True,
    )
    down.update(paused, active=True)
    assert down.quality == Q.POOR  # not the score it had before the pause (a silent track keeps that)
    steady(down, report(bps=1_000_000, expected=1_200_000))
    assert down.quality == Q.EXCELLENT


def test_silent_up_track_that_should_flow_is_lost() -> None:
    scorer = steady(video_up(), report())
    dry = report(bps=0)
    for _ in range(DRY_POOR - 1):
        scorer.update(dry, active=True)
    assert scorer.quality == Q.EXCELLENT  # one silent evaluation proves nothing
    for _ in range(DRY_LOST - DRY_POOR):
        scorer.update(dry, active=True)
    assert scorer.quality == Q.POOR
    scorer.update(dry, active=True)
    assert scorer.quality == Q.LOST
    steady(scorer, report(), 4)
    assert scorer.quality == Q.EXCELLENT


def test_never_a_false_lost() -> None:
    dry = report(bps=0)
    muted = steady(video_up(), report())
    for _ in range(10):
        muted.update(dry, active=False)
    assert muted.quality == Q.EXCELLENT
    unmuted = muted
    for _ in range(DRY_POOR):
        unmuted.update(report(), active=True)
    assert unmuted.quality == Q.EXCELLENT
    down = TrackScorer(loss_weight("video"), upstream=False)
    assert steady(down, dry).quality == Q.EXCELLENT  # the publisher sent nothing
    unmeasured = steady(video_up(), None)
    assert unmeasured.quality == Q.EXCELLENT
    lossy_muted = steady(video_up(), report(0.2))
    lossy_muted.update(None, active=False)
    assert lossy_muted.quality == Q.EXCELLENT


def test_participant_quality_is_the_worst_track() -> None:
    assert worst([]) == (Q.EXCELLENT, 4.5)
    assert worst([(Q.GOOD, 3.5), (Q.POOR, 2.0), (Q.GOOD, 3.0)]) == (Q.POOR, 2.0)
    assert worst([(Q.GOOD, 3.5), (Q.GOOD, 3.0)]) == (Q.GOOD, 3.0)
    assert mos_of(100.0) == 4.5 and mos_of(0.0) == 1.0


# -- the monitor -----------------------------------------------------------------------------------
class FakeOutbox:
    def __init__(self, sid: str) -> None:
        self.connection_id = f"CO_{sid}"
        self.sent: list[rtc.SignalResponse] = []

    def send(self, response: rtc.SignalResponse) -> None:
        self.sent.append(response)

    def close(self, response: rtc.SignalResponse | None = None) -> None:
        pass


class FakeUpLink(FakePublishedMedia):
    """An up track whose next link report the test sets (``next``)."""

    def __init__(self, sid: str, kind: str = "video") -> None:
        super().__init__(kind, sid, report=report())

    @property
    def next(self) -> LinkReport | None:
        return self.report

    @next.setter
    def next(self, value: LinkReport | None) -> None:
        self.report = value


class FakeDownLink(FakeSubscribedMedia):
    """A down track whose next link report the test sets (``next``)."""

    def __init__(self, sid: str, kind: str = "video") -> None:
        super().__init__(kind=kind, track_sid=sid, report=report())

    @property
    def next(self) -> LinkReport | None:
        return self.report

    @next.setter
    def next(self, value: LinkReport | None) -> None:
        self.report = value


def participant(identity: str, protocol: int = 16) -> Participant:
    permission = models.ParticipantPermission(can_publish=True, can_subscribe=True)
    info = models.ParticipantInfo(sid=f"PA_{identity}", identity=identity, permission=permission)
    p = Participant(
        info=info,
        outbox=FakeOutbox(info.sid),  # type: ignore[arg-type]
        edge_id="e",
        auto_subscribe=True,
        protocol=protocol,
        client_info=models.ClientInfo(),
    )
    p.active = True
    return p


def publish(pub: Participant, sid: str, kind: str = "video") -> FakeUpLink:
    up = FakeUpLink(sid, kind)
    track_type = models.TrackType.VIDEO if kind == "video" else models.TrackType.AUDIO
    mime = "video/VP8" if kind == "video" else "audio/opus"
    pub.published[sid] = PublishedTrack(
        info=models.TrackInfo(sid=sid, type=track_type, mime_type=mime), up=up
    )
    return up


def subscribe(sub: Participant, sid: str, kind: str = "video") -> FakeDownLink:
    down = FakeDownLink(sid, kind)
    sub.downtracks[sid] = down
    return down


def qualities(message: rtc.SignalResponse) -> dict[str, int]:
    assert message.WhichOneof("message") == "connection_quality"
    return {u.participant_sid: int(u.quality) for u in message.connection_quality.updates}


def test_each_participant_gets_itself_and_its_publishers() -> None:
    a, b, c = participant("a"), participant("b"), participant("c")
    publish(a, "TR_a")
    subscribe(b, "TR_a")
    monitor = ConnectionQualityMonitor()
    sent = {p.sid: qualities(m) for p, m in monitor.evaluate([a, b, c], 0.0)}
    assert sent == {
        "PA_a": {"PA_a": Q.EXCELLENT},
        "PA_b": {"PA_b": Q.EXCELLENT, "PA_a": Q.EXCELLENT},
        "PA_c": {"PA_c": Q.EXCELLENT},
    }
    assert monitor.evaluate([a, b, c], 5.0) == []  # nothing changed
    subscribe(c, "TR_a")
    assert [(p.sid, qualities(m)) for p, m in monitor.evaluate([a, b, c], 10.0)] == [
        ("PA_c", {"PA_c": Q.EXCELLENT, "PA_a": Q.EXCELLENT})
    ]


def test_quality_change_is_sent_to_everyone_and_worst_direction_wins() -> None:
    a, b = participant("a"), participant("b")
    publish(a, "TR_a")
    down = subscribe(b, "TR_a")
    monitor = ConnectionQualityMonitor()
    monitor.evaluate([a, b], 0.0)
    down.next = report(0.25)
    sent = {p.sid: qualities(m) for p, m in monitor.evaluate([a, b], 5.0)}
    assert sent == {"PA_a": {"PA_a": Q.EXCELLENT}, "PA_b": {"PA_b": Q.POOR, "PA_a": Q.EXCELLENT}}


def test_lost_only_when_every_flowing_up_track_is_silent() -> None:
    a, old = participant("a"), participant("old", protocol=9)
    cam, mic = publish(a, "TR_cam"), publish(a, "TR_mic", "audio")
    old_cam = publish(old, "TR_old")
    monitor = ConnectionQualityMonitor()
    cam.next = old_cam.next = report(bps=0)
    infos: dict[str, int] = {}
    for i in range(DRY_LOST):
        for _p, m in monitor.evaluate([a, old], float(i)):
            infos.update(qualities(m))
    assert infos["PA_a"] == Q.POOR  # the microphone still flows
    mic.next = report(bps=0)
    for i in range(DRY_LOST):
        for _p, m in monitor.evaluate([a, old], 10.0 + i):
            infos.update(qualities(m))
    assert infos["PA_a"] == Q.LOST
    assert infos["PA_old"] == Q.POOR  # protocol <= 10 does not know LOST


def test_muted_disabled_and_dynacast_off_tracks_are_not_scored() -> None:
    a, b = participant("a"), participant("b")
    cam = publish(a, "TR_cam")
    screen = publish(a, "TR_screen")
    a.published["TR_cam"].info.muted = True
    down = subscribe(b, "TR_cam")
    cam.next = screen.next = report(bps=0)
    down.next = report(0.5)
    down.requested_max_spatial = NO_LAYER
    monitor = ConnectionQualityMonitor(publishing=lambda sid: sid != "TR_screen")
    infos: dict[str, int] = {}
    for i in range(DRY_LOST + 2):
        for _p, m in monitor.evaluate([a, b], float(i)):
            infos.update(qualities(m))
    assert infos == {"PA_a": Q.EXCELLENT, "PA_b": Q.EXCELLENT}


def test_old_protocols_and_inactive_participants_get_nothing() -> None:
    a, b = participant("a", protocol=4), participant("b")
    b.active = False
    assert ConnectionQualityMonitor().evaluate([a, b], 0.0) == []


# -- the room's loop -------------------------------------------------------------------------------
class FakeBus:
    def __init__(self) -> None:
        self.signals: list[rtc.SignalResponse] = []

    async def publish(self, subject: str, message: Message) -> None:
        if isinstance(message, relay_pb2.ServerSignal) and message.response:
            self.signals.append(rtc.SignalResponse.FromString(message.response))

    async def request(
        self, subject: str, message: Message, response_type: type[Message], **_: Any
    ) -> Message:
        return response_type()

    async def call(self, rpc: Rpc[Any, Any], message: Message, **kw: Any) -> Message:
        """``Bus.call`` as the request it makes on the wire."""
        return await self.request(rpc.subject(kw.pop("topic", "")), message, rpc.response, **kw)


@pytest_asyncio.fixture
async def room() -> AsyncIterator[Room]:
    tasks = TaskSet("test")
    bus = FakeBus()
    host = RoomHost(
        bus=bus,  # type: ignore[arg-type]
        config=SfuConfig(sfu=SfuSection(connection_quality_interval=0.05)),
        node_id="N_test",
        reporter=StateReporter(bus, tasks),  # type: ignore[arg-type]
        on_empty=lambda room: None,
    )
    room = Room(host, models.Room(name="r", sid="RM_test"))
    yield room
    await room.aclose()
    await tasks.aclose()


async def test_room_loop_sends_connection_quality(room: Room) -> None:
    a = participant("a")
    publish(a, "TR_a")
    room.participants[a.sid] = a
    sent: list[rtc.SignalResponse] = a.outbox.sent  # type: ignore[attr-defined]
    await poll_until(lambda: bool(sent), timeout=5, message="connection_quality sent")
    assert qualities(sent[0]) == {"PA_a": Q.EXCELLENT}
