"""Two SFU nodes in one process on one bus: each node has its own media context (settings, counters,
per-transport state), serves its own subjects, and forwards media with its own engine while the
other's counters stay untouched. Real nats-server; real aiortc peers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from parley.bus import NatsBus, rpcs
from parley.config import RtcConfig
from parley.observability import configure_metrics, prometheus_text
from parley.protocol.gen.room.v1 import room_state_pb2 as rs
from parley.sfu import engine
from parley.sfu.config import SfuConfig
from parley.sfu.node import Node
from parley.testing import poll_until

from .conftest import Room

pytestmark = pytest.mark.integration

Publish = Callable[..., Awaitable[Room]]


def _config(rtc: RtcConfig, cache: int) -> SfuConfig:
    return SfuConfig(rtc=rtc.model_copy(update={"packet_cache_size": cache}))


def _sample(text: str, name: str, node_id: str, label: str) -> float:
    [value] = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and f'node_id="{node_id}"' in line and label in line
    ]
    return value


@pytest_asyncio.fixture
async def nodes(bus: NatsBus, rtc: RtcConfig) -> AsyncIterator[tuple[Node, Node]]:
    configure_metrics("sfu", "N_test")
    started: list[Node] = []
    for node_id, cache in (("N_one", 300), ("N_two", 700)):
        config = _config(rtc, cache)
        node = Node(config, bus, node_id, media=engine.configure(config.rtc))
        await node.start()
        started.append(node)
    try:
        yield started[0], started[1]
    finally:
        for node in started:
            await node.aclose()


async def test_two_nodes_in_one_process_keep_their_media_apart(
    bus: NatsBus, nodes: tuple[Node, Node], publish_with: Publish
) -> None:
    one, two = nodes
    assert one.media is not two.media
    assert (one.media.packet_cache_size, two.media.packet_cache_size) == (300, 700)
    for node in nodes:  # each answers on its own subjects
        sessions = await bus.call(rpcs.NODE_SESSIONS, rs.NodeSessions(), topic=node.node_id)
        assert sessions.node_id == node.node_id

    room = await publish_with(("audio",), context=one.media)
    sub = None
    try:
        sub = await room.subscribe(("audio",))
        await poll_until(lambda: sub.downs[0].packets_sent > 20, timeout=20, message="audio through node one")
        stats_one, stats_two = one.media.stats, two.media.stats
        assert stats_one.packets_in > 20 and stats_one.packets_out > 20
        assert stats_one.tracks_in == stats_one.tracks_out == 1
        assert (stats_two.packets_in, stats_two.packets_out, stats_two.tracks_in, stats_two.tracks_out) == (
            0,
            0,
            0,
            0,
        )
        assert [*one.media.transports.feedbacks()] == [room.ups["audio"].feedback]
        assert len(two.media.transports) == 0
        assert sub.downs[0]._ring_size == 300
        packets_in, _ = engine.media_rates(one.media)
        assert packets_in > 0 and engine.media_rates(two.media) == (0.0, 0.0)
        assert one.stats().node_id == "N_one" and two.stats().node_id == "N_two"
        # /metrics: one series per node, each from its own context
        seen = stats_one.packets_in
        text = prometheus_text().decode()
        assert _sample(text, "livekit_packet_total", "N_one", 'direction="incoming"') >= seen > 20
        assert _sample(text, "livekit_packet_total", "N_two", 'direction="incoming"') == 0
    finally:
        for down in sub.downs if sub is not None else []:
            down.close()
        await room.close()
