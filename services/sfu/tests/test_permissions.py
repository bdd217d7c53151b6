"""Subscription permissions (LiveKit uptrackmanager / subscriptionmanager): a publisher's
``subscription_permission`` decides who receives its tracks; subscribers learn it through
``subscription_permission_update``. Subscribers are /rtc/v1 participants, whose subscriptions wait
in ``v1.pending`` for a client offer: no peer connection is needed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf.message import Message
from livekit.protocol import models, rtc

from parley.bus import Rpc
from parley.observability import TaskSet
from parley.sfu import permissions, signal_handler, subscriptions
from parley.sfu.config import SfuConfig
from parley.sfu.media.fakes import FakePublishedMedia
from parley.sfu.participant import Participant, PublishedTrack
from parley.sfu.room import Room, RoomHost
from parley.sfu.state_reporter import StateReporter

pytestmark = pytest.mark.unit


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


class FakeOutbox:
    def __init__(self, sid: str) -> None:
        self.connection_id = f"CO_{sid}"
        self.sent: list[rtc.SignalResponse] = []

    def send(self, response: rtc.SignalResponse) -> None:
        self.sent.append(response)

    def close(self, response: rtc.SignalResponse | None = None) -> None:
        pass


class FakeUp(FakePublishedMedia):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)


@pytest_asyncio.fixture
async def room() -> AsyncIterator[Room]:
    tasks = TaskSet("test")
    bus = FakeBus()
    host = RoomHost(
        bus=bus,  # type: ignore[arg-type]
        config=SfuConfig(),
        node_id="N_test",
        reporter=StateReporter(bus, tasks),  # type: ignore[arg-type]
        on_empty=lambda room: None,
    )
    room = Room(host, models.Room(name="r", sid="RM_test"))
    yield room
    await room.aclose()
    await tasks.aclose()


def add(
    room: Room, identity: str, *, kind: int = models.ParticipantInfo.Kind.STANDARD, **perm: Any
) -> Participant:
    permission = models.ParticipantPermission(can_publish=True, can_subscribe=True, **perm)
    info = models.ParticipantInfo(sid=f"PA_{identity}", identity=identity, permission=permission, kind=kind)  # type: ignore[arg-type]
    p = Participant(
        info=info,
        outbox=FakeOutbox(info.sid),  # type: ignore[arg-type]
        edge_id="e",
        auto_subscribe=True,
        protocol=16,
        client_info=models.ClientInfo(),
        single_pc=True,
    )
    p.active = True
    room.participants[p.sid] = p
    return p


def publish(pub: Participant, sid: str, kind: str = "video") -> None:
    track_type = models.TrackType.VIDEO if kind == "video" else models.TrackType.AUDIO
    info = models.TrackInfo(sid=sid, type=track_type)
    pub.published[sid] = PublishedTrack(info=info, up=FakeUp(kind))


def receiving(p: Participant) -> set[str]:
    return set(p.v1.pending) | set(p.downtracks)


def updates(p: Participant) -> list[tuple[str, str, bool]]:
    """The subscription_permission_update messages p got, and clears them."""
    sent: list[rtc.SignalResponse] = p.outbox.sent  # type: ignore[attr-defined]
    found = [
        (m.subscription_permission_update.participant_sid, m.subscription_permission_update.track_sid,
         m.subscription_permission_update.allowed)
        for m in sent
        if m.WhichOneof("message") == "subscription_permission_update"
    ]  # fmt: skip
    assert not any(m.WhichOneof("message") == "subscription_response" for m in sent)
    sent.clear()
    return found


def grant(*entries: rtc.TrackPermission, everyone: bool = False) -> rtc.SubscriptionPermission:
    return rtc.SubscriptionPermission(all_participants=everyone, track_permissions=list(entries))


def setup_room(room: Room) -> tuple[Participant, Participant, Participant]:
    pub, b, c = add(room, "pub"), add(room, "b"), add(room, "c")
    publish(pub, "TR_v")
    publish(pub, "TR_a", "audio")
    subscriptions.reconcile_all(room)
    return pub, b, c


async def test_everyone_allowed_by_default_and_told_once(room: Room) -> None:
    pub, b, c = setup_room(room)
    assert receiving(b) == receiving(c) == {"TR_v", "TR_a"}
    assert sorted(updates(b)) == [("PA_pub", "TR_a", True), ("PA_pub", "TR_v", True)]
    subscriptions.reconcile_all(room)
    assert updates(b) == [] and receiving(pub) == set()


async def test_revoke_and_grant_by_identity_and_sid(room: Room) -> None:
    pub, b, c = setup_room(room)
    updates(b), updates(c)
    permissions.update(room, pub, grant(rtc.TrackPermission(participant_identity="b", all_tracks=True)))
    assert receiving(b) == {"TR_v", "TR_a"} and updates(b) == []
    assert receiving(c) == set()
    assert sorted(updates(c)) == [("PA_pub", "TR_a", False), ("PA_pub", "TR_v", False)]

    # c allowed only the audio track, named by sid (stored resolved to its identity)
    permissions.update(
        room,
        pub,
        grant(
            rtc.TrackPermission(participant_identity="b", all_tracks=True),
            rtc.TrackPermission(participant_sid="PA_c", track_sids=["TR_a"]),
        ),
    )
    assert receiving(c) == {"TR_a"} and updates(c) == [("PA_pub", "TR_a", True)]
    assert pub.subscription_permission is not None
    assert pub.subscription_permission.track_permissions[1].participant_identity == "c"

    permissions.update(room, pub, grant(everyone=True))
    assert receiving(c) == {"TR_v", "TR_a"} and updates(c) == [("PA_pub", "TR_v", True)]


async def test_empty_permission_denies_everyone_and_new_tracks(room: Room) -> None:
    pub, b, c = setup_room(room)
    permissions.update(room, pub, grant())
    assert receiving(b) == receiving(c) == set()
    publish(pub, "TR_later")
    updates(b)
    subscriptions.reconcile_all(room)
    assert receiving(b) == set() and updates(b) == [("PA_pub", "TR_later", False)]


async def test_unknown_sid_skipped_and_entry_without_id_rejected(room: Room) -> None:
    pub, b, c = setup_room(room)
    permissions.update(
        room,
        pub,
        grant(
            rtc.TrackPermission(participant_sid="PA_gone", all_tracks=True),
            rtc.TrackPermission(participant_identity="b", all_tracks=True),
        ),
    )
    assert receiving(b) == {"TR_v", "TR_a"} and receiving(c) == set()
    assert pub.subscription_permission is not None and len(pub.subscription_permission.track_permissions) == 1
    before = pub.subscription_permission
    permissions.update(room, pub, grant(rtc.TrackPermission(all_tracks=True)))
    assert pub.subscription_permission is before and receiving(b) == {"TR_v", "TR_a"}


async def test_recorders_exempt_agents_and_hidden_are_not(room: Room) -> None:
    pub = add(room, "pub")
    publish(pub, "TR_v")
    recorder = add(room, "rec", recorder=True, hidden=True)
    egress = add(room, "eg", kind=models.ParticipantInfo.Kind.EGRESS)
    agent = add(room, "agent", kind=models.ParticipantInfo.Kind.AGENT, agent=True)
    hidden = add(room, "ghost", hidden=True)
    permissions.update(room, pub, grant())
    assert receiving(recorder) == receiving(egress) == {"TR_v"}
    assert receiving(agent) == receiving(hidden) == set()


async def test_signal_request_dispatched(room: Room) -> None:
    pub, b, c = setup_room(room)
    request = rtc.SignalRequest(
        subscription_permission=grant(rtc.TrackPermission(participant_identity="c", track_sids=["TR_v"]))
    )
    await room.call(lambda: signal_handler.handle(room, pub, request))
    assert receiving(b) == set() and receiving(c) == {"TR_v"}
    assert permissions.allowed(pub, c, "TR_v") and not permissions.allowed(pub, c, "TR_a")
