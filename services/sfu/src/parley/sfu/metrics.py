"""The SFU's Prometheus metrics (``/metrics`` of the runtime's health server), under LiveKit's names.

Names and labels follow livekit/livekit ``pkg/telemetry/prometheus`` (``rooms.go``, ``packets.go``):

| metric | type | labels | what |
|---|---|---|---|
| ``livekit_room_total`` | gauge | | rooms on the node |
| ``livekit_participant_total`` | gauge | | participants on the node (waiting for a resume included) |
| ``livekit_track_published_total`` | gauge | ``kind`` | published tracks bound to their m-line |
| ``livekit_track_subscribed_total`` | gauge | ``kind`` | down tracks (subscriptions being forwarded) |
| ``livekit_packet_total`` | counter | ``direction``, ``transmission`` | RTP packets |
| ``livekit_packet_bytes`` | gauge* | ``direction``, ``transmission`` | RTP bytes |
| ``livekit_nack_total`` | counter | ``direction`` | NACK packets |
| ``livekit_pli_total`` | counter | ``direction`` | PLIs (and FIRs received) |
| ``livekit_packet_loss_total`` | counter | ``direction`` | packets lost |
| ``livekit_rtt_ms`` | histogram | ``direction``, ``type`` | subscriber round trip (from RRs) |
| ``livekit_jitter_us`` | histogram | ``direction``, ``type`` | interarrival jitter |
| ``parley_sfu_media_errors_total`` | counter | | exceptions caught on the media path |

Every series also carries LiveKit's ``node_id`` and ``node_type`` (``SERVER``) labels (and
OpenTelemetry's ``otel_scope_*``). ``direction`` is the media stream's, as in LiveKit
(``telemetry/stats.go``): ``incoming`` for publishers' streams (the NACKs and PLIs the SFU sends to
publishers, the loss of their packets), ``outgoing`` for subscribers' (the NACKs and PLIs they send,
the loss their receiver reports tell). ``transmission`` is ``initial`` or ``retransmit`` (only
outgoing NACK answers are retransmissions; upstream RTX counts as initial, as in LiveKit). LiveKit's
``country`` label and the ``source``/``type`` labels of its loss counter are not kept; ``kind`` and
``type`` are ``AUDIO``/``VIDEO`` (LiveKit's ``TrackType.String()``).

(*) ``livekit_packet_bytes`` is a counter in LiveKit, but OpenTelemetry's Prometheus exporter
appends ``_total`` to every counter; exposed as a gauge it keeps LiveKit's exact name (it only
grows, so ``rate()`` works the same).

The counters are read from each node's ``MediaContext.stats`` at scrape time (observable
instruments): the packet path only bumps plain ints. The RTT and jitter histograms are sampled from
the tracks every ``sfu.stats_interval`` (``sample_loop``). OpenTelemetry's meter provider is
process-wide, so the instruments are created once per process (``sfu_metrics()``) and report every
registered node, each under its own ``node_id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from livekit.protocol import models
from opentelemetry.metrics import CallbackOptions, Observation

from parley.observability import get_logger, meter

if TYPE_CHECKING:
    from parley.sfu.node import Node
    from parley.sfu.room import Room

log = get_logger("parley.sfu.metrics")

NODE_TYPE = "SERVER"
"""LiveKit's ``node_type`` label (``livekit.NodeType``)."""
RTT_BUCKETS_MS = (50.0, 100.0, 150.0, 200.0, 250.0, 500.0, 750.0, 1000.0, 5000.0, 10000.0)
JITTER_BUCKETS_US = (1000.0, 10000.0, 30000.0, 50000.0, 70000.0, 100000.0, 300000.0, 600000.0, 1000000.0)
KINDS = ("AUDIO", "VIDEO")
"""``kind`` and ``type`` label values: LiveKit's ``TrackType.String()``."""

METRIC_NAMES = (
    "livekit_room_total",
    "livekit_participant_total",
    "livekit_track_published_total",
    "livekit_track_subscribed_total",
    "livekit_packet_total",
    "livekit_packet_bytes",
    "livekit_nack_total",
    "livekit_pli_total",
    "livekit_packet_loss_total",
    "livekit_rtt_ms",
    "livekit_jitter_us",
    "parley_sfu_media_errors_total",
)
"""Every metric family the SFU exposes (histograms add ``_bucket``/``_sum``/``_count``)."""


def _kind(track_type: int) -> str:
    return models.TrackType.Name(track_type)  # type: ignore[arg-type]


def _track_kinds(room: Room) -> dict[str, str]:
    """track sid -> ``AUDIO``/``VIDEO`` for the room's published tracks."""
    return {
        sid: _kind(track.info.type) for p in room.participants.values() for sid, track in p.published.items()
    }


class SfuMetrics:
    """The SFU's instruments over the nodes registered with :meth:`register`."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {}
        m = meter("parley.sfu")
        gauges = (
            ("livekit_room_total", self._rooms, "Rooms on this node"),
            ("livekit_participant_total", self._participants, "Participants on this node"),
            ("livekit_track_published_total", self._published, "Published tracks, by kind"),
            ("livekit_track_subscribed_total", self._subscribed, "Subscribed (forwarded) tracks, by kind"),
            ("livekit_packet_bytes", self._bytes, "RTP bytes, by stream direction and transmission"),
        )
        for name, gauge_callback, description in gauges:
            m.create_observable_gauge(name, callbacks=[gauge_callback], description=description)
        counters = (
            ("livekit_packet_total", self._packets, "RTP packets, by stream direction and transmission"),
            ("livekit_nack_total", self._nacks, "NACK packets, by stream direction"),
            ("livekit_pli_total", self._plis, "Keyframe requests (PLI, FIR), by stream direction"),
            ("livekit_packet_loss_total", self._loss, "Packets lost, by stream direction"),
            ("parley_sfu_media_errors_total", self._errors, "Exceptions caught on the media path"),
        )
        for name, counter_callback, description in counters:
            m.create_observable_counter(name, callbacks=[counter_callback], description=description)
        self._rtt = m.create_histogram(
            "livekit_rtt_ms",
            description="Round-trip time to subscribers from their receiver reports",
            explicit_bucket_boundaries_advisory=RTT_BUCKETS_MS,
        )
        self._jitter = m.create_histogram(
            "livekit_jitter_us",
            description="Interarrival jitter of publishers' (incoming) and subscribers' (outgoing) streams",
            explicit_bucket_boundaries_advisory=JITTER_BUCKETS_US,
        )

    # ---- nodes

    def register(self, node: Node) -> None:
        self._nodes[node.node_id] = node

    def unregister(self, node: Node) -> None:
        if self._nodes.get(node.node_id) is node:
            del self._nodes[node.node_id]

    @staticmethod
    def _labels(node: Node, **extra: str) -> dict[str, str]:
        return {"node_id": node.node_id, "node_type": NODE_TYPE, **extra}

    # ---- gauges read at scrape time

    def _rooms(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(len(n.rooms), self._labels(n)) for n in list(self._nodes.values())]

    def _participants(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(sum(len(r.participants) for r in n.rooms.values()), self._labels(n))
            for n in list(self._nodes.values())
        ]

    def _published(self, _: CallbackOptions) -> Iterable[Observation]:
        observations = []
        for node in list(self._nodes.values()):
            counts = dict.fromkeys(KINDS, 0)
            for room in node.rooms.values():
                for p in room.participants.values():
                    for track in p.published.values():
                        if track.up is not None:
                            kind = _kind(track.info.type)
                            counts[kind] = counts.get(kind, 0) + 1
            observations += [Observation(v, self._labels(node, kind=k)) for k, v in counts.items()]
        return observations

    def _subscribed(self, _: CallbackOptions) -> Iterable[Observation]:
        observations = []
        for node in list(self._nodes.values()):
            counts = dict.fromkeys(KINDS, 0)
            for room in node.rooms.values():
                kinds = _track_kinds(room)
                for p in room.participants.values():
                    for sid in p.downtracks:
                        kind = kinds.get(sid)
                        if kind is not None:
                            counts[kind] = counts.get(kind, 0) + 1
            observations += [Observation(v, self._labels(node, kind=k)) for k, v in counts.items()]
        return observations

    # ---- the media context's counters

    def _packets(self, _: CallbackOptions) -> Iterable[Observation]:
        observations = []
        for node in list(self._nodes.values()):
            s = node.media.stats
            observations += [
                Observation(s.packets_in, self._labels(node, direction="incoming", transmission="initial")),
                Observation(
                    s.packets_out - s.packets_out_rtx,
                    self._labels(node, direction="outgoing", transmission="initial"),
                ),
                Observation(
                    s.packets_out_rtx, self._labels(node, direction="outgoing", transmission="retransmit")
                ),
            ]
        return observations

    def _bytes(self, _: CallbackOptions) -> Iterable[Observation]:
        observations = []
        for node in list(self._nodes.values()):
            s = node.media.stats
            observations += [
                Observation(s.bytes_in, self._labels(node, direction="incoming", transmission="initial")),
                Observation(
                    s.bytes_out - s.bytes_out_rtx,
                    self._labels(node, direction="outgoing", transmission="initial"),
                ),
                Observation(
                    s.bytes_out_rtx, self._labels(node, direction="outgoing", transmission="retransmit")
                ),
            ]
        return observations

    def _both_ways(self, incoming: str, outgoing: str) -> list[Observation]:
        observations = []
        for node in list(self._nodes.values()):
            s = node.media.stats
            observations += [
                Observation(getattr(s, incoming), self._labels(node, direction="incoming")),
                Observation(getattr(s, outgoing), self._labels(node, direction="outgoing")),
            ]
        return observations

    def _nacks(self, _: CallbackOptions) -> Iterable[Observation]:
        return self._both_ways("nacks_sent", "nacks_received")

    def _plis(self, _: CallbackOptions) -> Iterable[Observation]:
        return self._both_ways("plis_sent", "plis_received")

    def _loss(self, _: CallbackOptions) -> Iterable[Observation]:
        return self._both_ways("packets_lost_in", "packets_lost_out")

    def _errors(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n.media.stats.errors, self._labels(n)) for n in list(self._nodes.values())]

    # ---- sampled histograms

    def sample(self, node: Node) -> int:
        """Record the current RTT and jitter of ``node``'s tracks; returns the samples recorded."""
        recorded = 0
        for room in list(node.rooms.values()):
            kinds = _track_kinds(room)
            for p in list(room.participants.values()):
                for track in p.published.values():
                    up = track.up
                    if up is not None and up.jitter_ms > 0:
                        labels = self._labels(node, direction="incoming", type=_kind(track.info.type))
                        self._jitter.record(up.jitter_ms * 1000, labels)
                        recorded += 1
                for sid, down in p.downtracks.items():
                    kind = kinds.get(sid, down.kind.upper())
                    labels = self._labels(node, direction="outgoing", type=kind)
                    rtt = down.rtt_ms
                    if rtt is not None:
                        self._rtt.record(rtt, labels)
                        recorded += 1
                    if down.jitter_ms > 0:
                        self._jitter.record(down.jitter_ms * 1000, labels)
                        recorded += 1
        return recorded

    async def sample_loop(self, node: Node, interval: float) -> None:
        """``sample`` every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.sample(node)
            except Exception:
                log.exception("metrics sampling failed", node_id=node.node_id)


_instance: SfuMetrics | None = None


def sfu_metrics() -> SfuMetrics:
    """The process's SFU instruments (created on first use: OTel allows one instrument per name)."""
    global _instance
    if _instance is None:
        _instance = SfuMetrics()
    return _instance
