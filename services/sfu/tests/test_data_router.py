"""Data packet rules (livekit-protocol §3) on the synchronous path, with fake channels."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.protocol import models, rtc

from parley.sfu import data_router
from parley.sfu.media.fakes import FakePublishedMedia
from parley.sfu.participant import Participant
from parley.sfu.speakers import SpeakerTracker

pytestmark = pytest.mark.unit


class FakeOutbox:
    connection_id = "CO_fake"

    def __init__(self) -> None:
        self.sent: list[rtc.SignalResponse] = []

    def send(self, response: rtc.SignalResponse) -> None:
        self.sent.append(response)


class FakeChannel:
    def __init__(self, label: str) -> None:
        self.label = label
        self.readyState = "open"
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def participant(identity: str, *, agent: bool = False, **perm: Any) -> Participant:
    permission = models.ParticipantPermission(can_publish=True, can_subscribe=True, can_publish_data=True)
    for key, value in perm.items():
        setattr(permission, key, value)
    kind = models.ParticipantInfo.Kind.AGENT if agent else models.ParticipantInfo.Kind.STANDARD
    info = models.ParticipantInfo(sid=f"PA_{identity}", identity=identity, permission=permission, kind=kind)
    p = Participant(
        info=info,
        outbox=FakeOutbox(),  # type: ignore[arg-type]
        edge_id="e",
        auto_subscribe=True,
        protocol=17,
        client_info=models.ClientInfo(),
    )
    p.active = True
    for label in (data_router.RELIABLE, data_router.LOSSY):
        p.sub_channels[label] = FakeChannel(label)  # type: ignore[assignment]
    return p


def received(p: Participant, label: str = data_router.RELIABLE) -> list[models.DataPacket]:
    out = []
    for raw in p.sub_channels[label].sent:  # type: ignore[attr-defined]
        packet = models.DataPacket()
        packet.ParseFromString(raw)
        out.append(packet)
    return out


def user_packet(**kw: Any) -> bytes:
    return models.DataPacket(user=models.UserPacket(payload=b"x", **kw)).SerializeToString()


def test_identity_stamped_kind_from_label_and_destinations() -> None:
    a, b, c = participant("a"), participant("b"), participant("c")
    spoofed = models.DataPacket(
        kind=models.DataPacket.Kind.LOSSY,
        participant_identity="mallory",
        user=models.UserPacket(payload=b"hi", topic="t", destination_identities=["b"]),
    )
    data_router.route(a, [a, b, c], data_router.RELIABLE, spoofed.SerializeToString())
    [got] = received(b)
    assert got.participant_identity == "a" and got.participant_sid == "PA_a"
    assert got.kind == models.DataPacket.Kind.RELIABLE
    assert got.user.topic == "t" and list(got.destination_identities) == ["b"]
    assert received(c) == [] and received(a) == []


def test_sequence_and_nonce_deduplication() -> None:
    a, b = participant("a"), participant("b")
    for seq in (1, 2, 2, 1, 3):
        packet = models.DataPacket(sequence=seq, user=models.UserPacket(payload=b"x"))
        data_router.route(a, [a, b], data_router.RELIABLE, packet.SerializeToString())
    assert [p.sequence for p in received(b)] == [1, 2, 3]
    for _ in range(2):
        data_router.route(a, [a, b], data_router.LOSSY, user_packet(nonce=b"n1"))
    assert len(received(b, data_router.LOSSY)) == 1


def test_drops_metrics_foreign_transcriptions_garbage_and_data_without_permission() -> None:
    a, b, agent = participant("a"), participant("b"), participant("agent", agent=True)
    transcription = models.DataPacket(transcription=models.Transcription()).SerializeToString()
    metrics_packet = models.DataPacket()
    metrics_packet.metrics.SetInParent()
    metrics = metrics_packet.SerializeToString()
    for raw in (transcription, metrics, b"\xff\xff garbage", user_packet()):
        data_router.route(a, [a, b], data_router.DATA_TRACK, raw)
    data_router.route(a, [a, b], data_router.RELIABLE, transcription)
    data_router.route(a, [a, b], data_router.RELIABLE, metrics)
    data_router.route(a, [a, b], data_router.RELIABLE, b"\xff\xff garbage")
    muted = participant("muted", can_publish_data=False)
    data_router.route(muted, [muted, b], data_router.RELIABLE, user_packet())
    assert received(b) == []
    data_router.route(agent, [agent, b], data_router.RELIABLE, transcription)
    assert len(received(b)) == 1


def test_hidden_sender_has_no_identity_and_data_waits_for_closed_channel() -> None:
    hidden, b = participant("h", hidden=True), participant("b")
    b.sub_channels[data_router.RELIABLE].readyState = "connecting"  # type: ignore[misc]
    data_router.route(hidden, [hidden, b], data_router.RELIABLE, user_packet())
    assert received(b) == []
    b.sub_channels[data_router.RELIABLE].readyState = "open"  # type: ignore[misc]
    b.flush_data()
    [got] = received(b)
    assert got.participant_identity == "" and got.participant_sid == "PA_h"


class FakeUp(FakePublishedMedia):
    def __init__(self, level: float) -> None:
        super().__init__("audio", audio_level=level)


def test_speakers_changed_only_on_change() -> None:
    from parley.sfu.participant import PublishedTrack

    a, b = participant("a"), participant("b")
    mic = FakeUp(0.5)
    a.published["TR_a"] = PublishedTrack(
        info=models.TrackInfo(sid="TR_a", type=models.TrackType.AUDIO), up=mic
    )
    tracker = SpeakerTracker(threshold=0.05)
    first = tracker.evaluate([a, b])
    assert first is not None and [(s.sid, s.active) for s in first.speakers] == [("PA_a", True)]
    assert tracker.evaluate([a, b]) is None
    mic.audio_level = 0.0
    stopped = tracker.evaluate([a, b])
    assert stopped is not None and [(s.sid, s.active) for s in stopped.speakers] == [("PA_a", False)]
