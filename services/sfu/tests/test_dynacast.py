"""Dynacast: subscribed_quality_update to a video publisher from its subscribers' requested layers
(LiveKit pkg/rtc/dynacast): enabling at once, disabling after the pause delay unless needed again,
everything off when nobody subscribes, silence while muted. A fake clock fires the timers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf.message import Message
from livekit.protocol import models, rtc

from parley.bus import Rpc
from parley.observability import TaskSet
from parley.sfu import dynacast
from parley.sfu.config import SfuConfig, SfuSection
from parley.sfu.dynacast import INITIAL_WAIT, Dynacast
from parley.sfu.media.fakes import FakePublishedMedia, FakeSubscribedMedia
from parley.sfu.media.interfaces import NO_LAYER
from parley.sfu.participant import Participant, PublishedTrack
from parley.sfu.room import Room, RoomHost
from parley.sfu.state_reporter import StateReporter
from parley.testing import poll_until

pytestmark = pytest.mark.unit

DELAY = 5.0
LOW, MEDIUM, HIGH = 0, 1, 2


@dataclass
class Timer:
    at: float
    fn: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Clock:
    now: float = 0.0
    timers: list[Timer] = field(default_factory=list)

    def schedule(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(self.now + delay, fn)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = sorted((t for t in self.timers if not t.cancelled and t.at <= end), key=lambda t: t.at)
            if not due:
                break
            timer = due[0]
            self.timers.remove(timer)
            self.now = timer.at
            timer.fn()
        self.now = end


class FakeOutbox:
    def __init__(self, sid: str) -> None:
        self.connection_id = f"CO_{sid}"
        self.sent: list[rtc.SignalResponse] = []

    def send(self, response: rtc.SignalResponse) -> None:
        self.sent.append(response)

    def close(self, response: rtc.SignalResponse | None = None) -> None:
        pass


class FakeUp(FakePublishedMedia):
    def __init__(self) -> None:
        super().__init__("video")


class FakeDown(FakeSubscribedMedia):
    def __init__(self, layer: int) -> None:
        super().__init__(requested_max_spatial=layer)


@dataclass
class FakeRoom:
    name: str = "r"
    participants: dict[str, Participant] = field(default_factory=dict)


def participant(room: FakeRoom, identity: str) -> Participant:
    info = models.ParticipantInfo(sid=f"PA_{identity}", identity=identity)
    p = Participant(
        info=info,
        outbox=FakeOutbox(info.sid),  # type: ignore[arg-type]
        edge_id="e",
        auto_subscribe=True,
        protocol=16,
        client_info=models.ClientInfo(),
    )
    room.participants[p.sid] = p
    return p


def video(pub: Participant, sid: str = "TR_v", muted: bool = False) -> PublishedTrack:
    info = models.TrackInfo(sid=sid, type=models.TrackType.VIDEO, mime_type="video/VP8", muted=muted)
    track = PublishedTrack(info=info, up=FakeUp())
    pub.published[sid] = track
    return track


def sent(p: Participant) -> list[int | None]:
    """Max enabled quality of each subscribed_quality_update p got (None: all off); clears them."""
    out: list[int | None] = []
    messages: list[rtc.SignalResponse] = p.outbox.sent  # type: ignore[attr-defined]
    for m in messages:
        if m.WhichOneof("message") != "subscribed_quality_update":
            continue
        update = m.subscribed_quality_update
        [codec] = update.subscribed_codecs
        assert codec.codec == "vp8"
        assert list(codec.qualities) == list(update.subscribed_qualities)
        assert [q.quality for q in update.subscribed_qualities] == [LOW, MEDIUM, HIGH]
        enabled = [q.quality for q in update.subscribed_qualities if q.enabled]
        assert enabled == list(range(len(enabled)))  # cumulative from LOW
        out.append(enabled[-1] if enabled else None)
    messages.clear()
    return out


Setup = tuple[Dynacast, Clock, FakeRoom, Participant]


def setup() -> Setup:
    clock = Clock()
    room = FakeRoom()
    d = Dynacast(room, DELAY, clock.schedule)  # type: ignore[arg-type]
    pub = participant(room, "pub")
    return d, clock, room, pub


def subscribe(d: Dynacast, room: FakeRoom, identity: str, layer: int, sid: str = "TR_v") -> FakeDown:
    sub = room.participants.get(f"PA_{identity}") or participant(room, identity)
    down = FakeDown(layer)
    sub.downtracks[sid] = down
    d.refresh(sid)
    return down


def unsubscribe(d: Dynacast, room: FakeRoom, identity: str, sid: str = "TR_v") -> None:
    del room.participants[f"PA_{identity}"].downtracks[sid]
    d.refresh(sid)


def test_first_subscriber_sent_at_once_upgrades_at_once() -> None:
    d, _clock, room, pub = setup()
    d.add(pub, video(pub))
    assert sent(pub) == []
    subscribe(d, room, "a", LOW)
    assert sent(pub) == [LOW]
    b = subscribe(d, room, "b", HIGH)
    assert sent(pub) == [HIGH]
    b.requested_max_spatial = HIGH
    d.refresh("TR_v")
    assert sent(pub) == []


def test_downgrade_waits_for_the_delay() -> None:
    d, clock, room, pub = setup()
    d.add(pub, video(pub))
    subscribe(d, room, "a", LOW)
    subscribe(d, room, "b", HIGH)
    sent(pub)
    unsubscribe(d, room, "b")
    clock.advance(DELAY - 0.1)
    assert sent(pub) == []
    clock.advance(0.2)
    assert sent(pub) == [LOW]


def test_downgrade_cancelled_when_needed_again() -> None:
    d, clock, room, pub = setup()
    d.add(pub, video(pub))
    down = subscribe(d, room, "a", HIGH)
    sent(pub)
    down.requested_max_spatial = LOW
    d.refresh("TR_v")
    clock.advance(DELAY / 2)
    down.requested_max_spatial = HIGH
    d.refresh("TR_v")
    clock.advance(DELAY * 3)
    assert sent(pub) == []


def test_upgrade_during_a_pending_downgrade_is_sent_at_once() -> None:
    d, clock, room, pub = setup()
    d.add(pub, video(pub))
    down = subscribe(d, room, "a", MEDIUM)
    sent(pub)
    down.requested_max_spatial = LOW
    d.refresh("TR_v")
    clock.advance(1.0)
    down.requested_max_spatial = HIGH
    d.refresh("TR_v")
    assert sent(pub) == [HIGH]
    clock.advance(DELAY * 2)
    assert sent(pub) == []


def test_nobody_subscribes_all_off_after_initial_wait() -> None:
    d, clock, room, pub = setup()
    d.add(pub, video(pub))
    clock.advance(INITIAL_WAIT - 0.1)
    assert sent(pub) == []
    clock.advance(0.2)
    assert sent(pub) == [None]
    subscribe(d, room, "a", MEDIUM)
    assert sent(pub) == [MEDIUM]


def test_last_subscriber_leaves_all_off_after_delay() -> None:
    d, clock, room, pub = setup()
    d.add(pub, video(pub))
    subscribe(d, room, "a", HIGH)
    sent(pub)
    unsubscribe(d, room, "a")
    assert sent(pub) == []
    clock.advance(DELAY + 0.1)
    assert sent(pub) == [None]


def test_disabled_subscription_counts_as_none() -> None:
    d, _clock, room, pub = setup()
    d.add(pub, video(pub))
    subscribe(d, room, "a", NO_LAYER)
    assert sent(pub) == [None]


def test_muted_track_sends_nothing_unmute_resends() -> None:
    d, clock, room, pub = setup()
    track = video(pub, muted=True)
    d.add(pub, track)
    down = subscribe(d, room, "a", NO_LAYER)  # a muted track's down tracks request nothing
    clock.advance(INITIAL_WAIT + DELAY * 2)
    assert sent(pub) == []
    track.info.muted = False
    down.requested_max_spatial = HIGH
    d.refresh("TR_v", force=True)
    assert sent(pub) == [HIGH]
    track.info.muted = True
    down.requested_max_spatial = NO_LAYER
    d.refresh("TR_v")
    clock.advance(DELAY * 2)
    assert sent(pub) == []
    track.info.muted = False
    down.requested_max_spatial = HIGH
    d.refresh("TR_v", force=True)
    assert sent(pub) == [HIGH]


def test_audio_ignored_and_removed_track_cancels_timers() -> None:
    d, clock, _room, pub = setup()
    audio = PublishedTrack(info=models.TrackInfo(sid="TR_a", type=models.TrackType.AUDIO), up=FakeUp())
    d.add(pub, audio)
    d.add(pub, video(pub))
    assert "TR_a" not in d.tracks
    d.remove("TR_v")
    assert all(t.cancelled for t in clock.timers)
    clock.advance(INITIAL_WAIT * 2)
    assert sent(pub) == []


def test_client_codec_name_is_used() -> None:
    d, _clock, _room, pub = setup()
    d.add(pub, video(pub), codec="video/vp8")
    assert d.tracks["TR_v"].codec == "vp8"
    assert dynacast.codec_name("video/H264") == "h264"


# -- in a real room: the scheduler runs the work in the actor ------------------------------------
class FakeBus:
    async def publish(self, subject: str, message: Message) -> None:
        pass

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
        config=SfuConfig(sfu=SfuSection(dynacast_pause_delay=0.05)),
        node_id="N_test",
        reporter=StateReporter(bus, tasks),  # type: ignore[arg-type]
        on_empty=lambda room: None,
    )
    room = Room(host, models.Room(name="r", sid="RM_test"))
    yield room
    await room.aclose()
    await tasks.aclose()


async def test_room_hooks_and_timers(room: Room) -> None:
    fake = FakeRoom()
    pub, sub = participant(fake, "pub"), participant(fake, "sub")
    room.participants.update(fake.participants)
    track = video(pub)
    dynacast.track_published(room, pub, track, "video/VP8")
    sub.downtracks["TR_v"] = FakeDown(HIGH)
    dynacast.refresh(room, pub, "TR_v")
    assert sent(pub) == [HIGH]
    del sub.downtracks["TR_v"]
    dynacast.refresh_sid(room, "TR_v")
    messages: list[rtc.SignalResponse] = pub.outbox.sent  # type: ignore[attr-defined]
    await poll_until(lambda: bool(messages), timeout=5, message="pause sent")
    assert sent(pub) == [None]
    dynacast.track_unpublished(room, "TR_v")
    assert "TR_v" not in room.dynacast.tracks


def test_refresh_all_catches_changes_without_a_hook() -> None:
    d, _clock, room, pub = setup()
    d.add(pub, video(pub))
    down = subscribe(d, room, "a", LOW)
    sent(pub)
    down.requested_max_spatial = HIGH
    d.refresh_all()
    assert sent(pub) == [HIGH]
