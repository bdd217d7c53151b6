"""The SFU's Prometheus metrics: LiveKit's exact names and labels in the exposition text, one series
per node (two nodes in one process do not mix), values read from each node's media context; and the
Grafana dashboard queries only metrics the SFU exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from livekit.protocol import models

from parley.observability import configure_metrics, prometheus_text
from parley.sfu.media import MediaContext
from parley.sfu.media.fakes import FakePublishedMedia, FakeSubscribedMedia
from parley.sfu.media.interfaces import LinkReport
from parley.sfu.metrics import METRIC_NAMES, sfu_metrics
from parley.sfu.participant import PublishedTrack

pytestmark = pytest.mark.unit

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "parley-sfu.json"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")


def scrape() -> dict[str, list[tuple[dict[str, str], float]]]:
    """metric sample name -> [(labels, value)] from this process's /metrics text."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in prometheus_text().decode().splitlines():
        match = SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        name, raw, value = match.groups()
        labels = dict(re.findall(r'(\w+)="([^"]*)"', raw or ""))
        samples.setdefault(name, []).append((labels, float(value)))
    return samples


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    found = [v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


def fake_node(node_id: str) -> Any:
    """What the metrics read of a Node: its id, media context and rooms."""
    audio = PublishedTrack(
        models.TrackInfo(sid="TR_a", type=models.TrackType.AUDIO),
        FakePublishedMedia("audio", "TR_a", report=LinkReport(0.0, 4.0, None, 0, 0)),
    )
    video = PublishedTrack(
        models.TrackInfo(sid="TR_v", type=models.TrackType.VIDEO), FakePublishedMedia("video")
    )
    pending = PublishedTrack(models.TrackInfo(sid="TR_p", type=models.TrackType.VIDEO))  # not bound yet
    pub = SimpleNamespace(published={"TR_a": audio, "TR_v": video, "TR_p": pending}, downtracks={})
    down = FakeSubscribedMedia(kind="audio", track_sid="TR_a", report=LinkReport(0.0, 2.5, 42.0, 0, 0))
    sub = SimpleNamespace(published={}, downtracks={"TR_a": down})
    room = SimpleNamespace(participants={"PA_pub": pub, "PA_sub": sub})
    return SimpleNamespace(node_id=node_id, media=MediaContext(), rooms={"r": room})


@pytest.fixture
def nodes() -> Any:
    configure_metrics("sfu", "N_test")
    metrics = sfu_metrics()
    one, two = fake_node("N_one"), fake_node("N_two")
    two.rooms = {}
    metrics.register(one)
    metrics.register(two)
    yield one, two
    metrics.unregister(one)
    metrics.unregister(two)


def test_livekit_names_labels_and_values_per_node(nodes: Any) -> None:
    one, _ = nodes
    s = one.media.stats
    s.packets_in, s.bytes_in = 100, 12_000
    s.packets_out, s.packets_out_rtx, s.bytes_out, s.bytes_out_rtx = 250, 7, 30_000, 900
    s.nacks_sent, s.nacks_received, s.plis_sent, s.plis_received = 3, 5, 2, 4
    s.packets_lost_in, s.packets_lost_out, s.errors = 6, 8, 1
    assert (
        sfu_metrics().sample(one) == 3
    )  # incoming jitter of the audio up track; rtt + jitter of the down track

    got = scrape()
    n1 = {"node_id": "N_one", "node_type": "SERVER"}
    n2 = {"node_id": "N_two", "node_type": "SERVER"}
    assert value(got, "livekit_room_total", **n1) == 1 and value(got, "livekit_room_total", **n2) == 0
    assert value(got, "livekit_participant_total", **n1) == 2
    assert value(got, "livekit_track_published_total", kind="AUDIO", **n1) == 1
    assert value(got, "livekit_track_published_total", kind="VIDEO", **n1) == 1  # the pending one is not
    assert value(got, "livekit_track_subscribed_total", kind="AUDIO", **n1) == 1
    assert value(got, "livekit_track_subscribed_total", kind="VIDEO", **n1) == 0
    packets = "livekit_packet_total"
    assert value(got, packets, direction="incoming", transmission="initial", **n1) == 100
    assert value(got, packets, direction="outgoing", transmission="initial", **n1) == 243
    assert value(got, packets, direction="outgoing", transmission="retransmit", **n1) == 7
    assert value(got, packets, direction="incoming", transmission="initial", **n2) == 0
    assert value(got, "livekit_packet_bytes", direction="incoming", transmission="initial", **n1) == 12_000
    assert value(got, "livekit_packet_bytes", direction="outgoing", transmission="initial", **n1) == 29_100
    assert value(got, "livekit_packet_bytes", direction="outgoing", transmission="retransmit", **n1) == 900
    assert value(got, "livekit_nack_total", direction="incoming", **n1) == 3
    assert value(got, "livekit_nack_total", direction="outgoing", **n1) == 5
    assert value(got, "livekit_pli_total", direction="incoming", **n1) == 2
    assert value(got, "livekit_pli_total", direction="outgoing", **n1) == 4
    assert value(got, "livekit_packet_loss_total", direction="incoming", **n1) == 6
    assert value(got, "livekit_packet_loss_total", direction="outgoing", **n1) == 8
    assert value(got, "parley_sfu_media_errors_total", **n1) == 1
    assert value(got, "livekit_rtt_ms_count", direction="outgoing", type="AUDIO", **n1) >= 1
    assert value(got, "livekit_rtt_ms_bucket", direction="outgoing", type="AUDIO", le="50.0", **n1) >= 1
    assert value(got, "livekit_jitter_us_sum", direction="incoming", type="AUDIO", **n1) >= 4000
    assert value(got, "livekit_jitter_us_count", direction="outgoing", type="AUDIO", **n1) >= 1

    s.packets_in += 10  # read at scrape time
    assert value(scrape(), packets, direction="incoming", transmission="initial", **n1) == 110


def test_unregistered_nodes_are_no_longer_reported(nodes: Any) -> None:
    one, _ = nodes
    sfu_metrics().unregister(one)
    assert not [
        labels for labels, _ in scrape().get("livekit_room_total", []) if labels["node_id"] == "N_one"
    ]


def _exposed_families(samples: dict[str, list[tuple[dict[str, str], float]]]) -> set[str]:
    return {
        re.sub(r"_(bucket|sum|count)$", "", name) if name.startswith("livekit_") else name for name in samples
    }


def test_every_metric_is_exposed_under_its_name(nodes: Any) -> None:
    sfu_metrics().sample(nodes[0])
    assert set(METRIC_NAMES) <= _exposed_families(scrape())


def test_the_dashboard_queries_only_exposed_metrics(nodes: Any) -> None:
    sfu_metrics().sample(nodes[0])
    exposed = set(scrape())
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert exprs
    queried = {name for expr in exprs for name in re.findall(r"\b(?:livekit|parley)_[a-z0-9_]+", expr)}
    assert queried and queried <= exposed, queried - exposed
    assert set(METRIC_NAMES) <= {re.sub(r"_(bucket|sum|count)$", "", q) for q in queried}  # a panel each
    assert any(
        v["name"] == "datasource" and v["type"] == "datasource" for v in dashboard["templating"]["list"]
    )
    uids = {
        t.get("datasource", {}).get("uid") for panel in dashboard["panels"] for t in panel.get("targets", [])
    }
    assert uids == {"${datasource}"}
