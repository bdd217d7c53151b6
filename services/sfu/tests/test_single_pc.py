"""/rtc/v1 bookkeeping (single_pc): which client m-lines are free, what to ask for, what an
unsubscription does; with fake transceivers and DownTracks (no peer connection)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from livekit.protocol import models, rtc

from parley.sfu import single_pc, subscriptions
from parley.sfu.media.fakes import FakePublishedMedia, FakeSubscribedMedia
from parley.sfu.participant import Participant, PublishedTrack

pytestmark = pytest.mark.unit


def m_line(kind: str, mid: str, direction: str, port: int = 9) -> str:
    pt, codec = ("111", "opus/48000/2") if kind == "audio" else ("96", "VP8/90000")
    return (
        f"m={kind} {port} UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\n"
        f"a={direction}\r\na=rtcp-mux\r\na=rtpmap:{pt} {codec}\r\n"
    )


def offer(*lines: str) -> str:
    head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    data = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:9\r\n"
    return head + "".join(lines) + data


class FakeOutbox:
    connection_id = "CO_fake"

    def __init__(self) -> None:
        self.sent: list[rtc.SignalResponse] = []

    def send(self, response: rtc.SignalResponse) -> None:
        self.sent.append(response)


@dataclass
class FakeTransceiver:
    mid: str
    kind: str = "audio"
    direction: str = "sendonly"


class FakeDown(FakeSubscribedMedia):
    def __init__(self, transceiver: FakeTransceiver) -> None:
        super().__init__(transceiver, kind=transceiver.kind)


class FakeUp(FakePublishedMedia):
    pass


def participant(sid: str = "PA_sub") -> Participant:
    permission = models.ParticipantPermission(can_publish=True, can_subscribe=True, can_publish_data=True)
    p = Participant(
        info=models.ParticipantInfo(sid=sid, identity=sid, permission=permission),
        outbox=FakeOutbox(),  # type: ignore[arg-type]
        edge_id="e",
        auto_subscribe=True,
        protocol=18,
        client_info=models.ClientInfo(),
        single_pc=True,
    )
    return p


def track(sid: str, kind: int = models.TrackType.AUDIO) -> PublishedTrack:
    return PublishedTrack(info=models.TrackInfo(sid=sid, type=kind), up=FakeUp())  # type: ignore[arg-type]


def test_single_pc_participant_is_publisher_primary() -> None:
    p = participant()
    assert p.single_pc and not p.subscriber_primary


def test_free_m_lines_exclude_sending_used_and_retired_ones() -> None:
    p = participant()
    single_pc.note_offer(
        p,
        offer(
            m_line("audio", "0", "recvonly"),
            m_line("audio", "1", "recvonly"),
            m_line("video", "2", "recvonly"),
            m_line("audio", "3", "sendonly"),
            m_line("audio", "4", "recvonly", port=0),
        ),
    )
    assert p.v1.receive_mids == {"0": "audio", "1": "audio", "2": "video"}
    assert p.v1.publish_mids == {"3"}
    p.downtracks["TR_a"] = FakeDown(FakeTransceiver("0"))
    assert single_pc.free_mids(p) == {"audio": ["1"], "video": ["2"]}
    single_pc.detach(p, "TR_a")
    assert single_pc.free_mids(p) == {"audio": ["1"], "video": ["2"]}  # "0" waits for its inactive answer
    single_pc.answered_inactive_once(p, {"0"})
    assert single_pc.free_mids(p) == {"audio": ["0", "1"], "video": ["2"]}  # then it is reused
    # a client that later sends recvonly on its own former sending m-line does not get it reused
    single_pc.note_offer(p, offer(m_line("audio", "3", "recvonly")))
    assert single_pc.free_mids(p) == {"audio": [], "video": []}


def test_detach_makes_the_m_line_inactive_and_asks_for_an_offer() -> None:
    p = participant()
    down = FakeDown(FakeTransceiver("0"))
    p.downtracks["TR_a"] = down
    p.v1.answered = True
    single_pc.detach(p, "TR_a")
    assert down.closed and down.transceiver.direction == "recvonly"  # answered inactive
    assert "TR_a" not in p.downtracks and "0" in p.v1.retired_mids
    assert single_pc.wants_offer(p)


def test_request_carries_only_the_missing_m_lines() -> None:
    p = participant()
    pub = participant("PA_pub")
    single_pc.note_offer(p, offer(m_line("audio", "0", "recvonly"), m_line("video", "1", "recvonly")))
    for sid, kind in (("TR_a1", 1), ("TR_a2", 1), ("TR_a3", 1), ("TR_v1", 2)):
        p.v1.pending[sid] = (pub, track(sid, models.TrackType.AUDIO if kind == 1 else models.TrackType.VIDEO))
    assert single_pc.missing(p) == (2, 0)
    p.v1.needs_offer = True
    assert not single_pc.wants_offer(p)  # never before the first answer
    p.v1.answered = True
    assert single_pc.wants_offer(p)
    single_pc.request_offer(p)
    sent = p.outbox.sent[-1]  # type: ignore[attr-defined]
    assert sent.WhichOneof("message") == "media_sections_requirement"
    assert (sent.media_sections_requirement.num_audios, sent.media_sections_requirement.num_videos) == (2, 0)
    assert p.v1.awaiting_offer and not single_pc.wants_offer(p)  # one request in flight
    p.v1.needs_offer = True
    p.v1.asked_at -= single_pc.REQUEST_RETRY_S + 1
    assert single_pc.wants_offer(p)  # ...unless the client left it unanswered for long
    p.v1.awaiting_offer, p.v1.needs_offer, p.v1.unsatisfied = False, True, single_pc.MAX_UNSATISFIED
    assert not single_pc.wants_offer(p)  # a client that never adds m-lines is not asked forever


def test_v1_subscription_waits_for_an_offer_and_unsubscribe_drops_it() -> None:
    sub = participant()
    pub = participant("PA_pub")
    t = track("TR_x")
    assert subscriptions.subscribe(None, sub, pub, t)  # type: ignore[arg-type]
    assert sub.v1.pending == {"TR_x": (pub, t)} and sub.v1.needs_offer and not sub.downtracks
    assert not subscriptions.subscribe(None, sub, pub, t)  # type: ignore[arg-type]
    no_dynacast = SimpleNamespace(dynacast=SimpleNamespace(refresh=lambda sid: None))
    subscriptions.unsubscribe(no_dynacast, sub, "TR_x")  # type: ignore[arg-type]
    assert sub.v1.pending == {}


def test_a_mid_retired_after_the_answer_was_built_stays_retired() -> None:
    p = participant()
    single_pc.note_offer(p, offer(m_line("audio", "0", "recvonly"), m_line("audio", "1", "recvonly")))
    for sid, mid in (("TR_a", "0"), ("TR_b", "1")):
        p.downtracks[sid] = FakeDown(FakeTransceiver(mid))
    single_pc.detach(p, "TR_a")
    in_answer = set(p.v1.retired_mids)
    single_pc.detach(p, "TR_b")  # while the answer was being created
    single_pc.answered_inactive_once(p, in_answer)
    assert p.v1.retired_mids == {"1"}
    assert single_pc.free_mids(p) == {"audio": ["0"], "video": []}


@dataclass
class FakePc:
    transceivers: list[Any]

    def getTransceivers(self) -> list[Any]:
        return self.transceivers


@dataclass
class V0Transceiver:
    mid: str | None
    kind: str = "audio"
    direction: str = "inactive"
    currentDirection: str | None = "inactive"
    stopped: bool = False


def test_v0_reuses_only_an_m_line_negotiated_inactive_and_free() -> None:
    sub = participant()
    live = V0Transceiver("0")
    candidates: list[Any] = [
        live,  # still carries a DownTrack
        V0Transceiver("1", kind="video", direction="sendonly", currentDirection="sendonly"),
        V0Transceiver(None),  # never negotiated
        V0Transceiver("3", stopped=True),
        V0Transceiver("4", currentDirection="sendonly"),  # its inactive offer is not answered yet
        V0Transceiver("5", direction="sendonly", currentDirection="sendonly"),
    ]
    sub.downtracks["TR_live"] = FakeDown(live)  # type: ignore[arg-type]
    pc: Any = FakePc(candidates)
    assert subscriptions.reusable_transceiver(sub, pc, "audio") is None
    free: Any = V0Transceiver("6")
    candidates.append(free)
    assert subscriptions.reusable_transceiver(sub, pc, "audio") is free
    assert subscriptions.reusable_transceiver(sub, pc, "video") is None
    candidates[1].direction = candidates[1].currentDirection = "inactive"
    assert subscriptions.reusable_transceiver(sub, pc, "video") is candidates[1]


def test_mid_to_track_id_names_every_downtrack() -> None:
    p = participant()
    p.downtracks["TR_a"] = FakeDown(FakeTransceiver("0"))
    p.downtracks["TR_v"] = FakeDown(FakeTransceiver("4", kind="video"))
    assert single_pc.mid_to_track_id(p) == {"0": "TR_a", "4": "TR_v"}
