"""Connection quality (LiveKit pkg/sfu/connectionquality): a score per track, a quality per participant.

Each track's link (an up track as received from its publisher, a down track as its subscriber's
receiver reports it: ``media.interfaces.LinkStats``) is scored every interval on LiveKit's 0..100
scale, a simplified E-model:

* packet score = 100 - delay effect (RTT / 2 + 2 x jitter, ms; gentle up to 160 ms, steep after)
  - loss % x codec weight (video 10; Opus 8, RED 4, both / 1.5 for in-band FEC), so video drops to
  GOOD at 2 % loss and to POOR at 6 %, Opus with FEC at 3.75 % and 11.25 %;
* bitrate score (down tracks only; LiveKit's layer-distance stand-in) = 100 - 20 ln(expected /
  actual), GOOD at ~2.7x below the requested layer's bitrate, POOR at ~20x;
* the lower of the two, smoothed (a drop moves 80 % of the way at once, a recovery 40 %) and floored
  at 30 (POOR) while packets flow;
* a down track its subscriber's stream allocator paused (the link cannot carry even the lowest
  layer) is POOR at once, whatever its last score (LiveKit's farthest layer distance).

Quality: score > 80 EXCELLENT, > 40 GOOD, > 20 POOR, else LOST; the score sent is LiveKit's MOS
(1.0..4.5) of it. A track that should not flow (muted, disabled by its subscriber, switched off by
dynacast) is not scored and reads EXCELLENT. A down track without packets keeps its score (the
publisher sent nothing). LOST needs an up track that should flow and has had no packets at three
evaluations in a row (POOR after two), and is reported only when every such up track of that
participant is silent (a quiet track is never a false LOST); a client at protocol 10 or below is
reported POOR instead, as LiveKit. A participant's quality is its worst track, publishing or subscribing, as LiveKit.

``ConnectionQualityMonitor.evaluate`` runs from the room's loop every
``sfu.connection_quality_interval`` seconds; every participant (ACTIVE, protocol > 4) gets
``connection_quality`` with its own quality and that of each publisher it subscribes to, whenever a
quality changed or a participant is new (Go ``connectionQualityWorker``), and when it starts
receiving from a new publisher (Go sends that publisher's quality on subscription).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from livekit.protocol import models, rtc

from parley.sfu.media.interfaces import NO_LAYER, LinkReport, LinkStats
from parley.sfu.participant import Participant, PublishedTrack

Quality = models.ConnectionQuality

MAX_SCORE = 100.0
MIN_SCORE = 30.0
"""Floor while packets flow (recovery from harsher values would take too long)."""
GOOD_ABOVE, POOR_ABOVE, LOST_ABOVE = 80.0, 40.0, 20.0
MAX_MOS = 4.5
INCREASE_FACTOR = 0.4
DECREASE_FACTOR = 0.8
DRY_POOR = 2
"""Evaluations in a row without packets on an up track that should flow -> POOR ..."""
DRY_LOST = 3
"""... -> LOST."""
PROTOCOL_QUALITY = 4
"""Clients above this protocol get connection_quality (Go SupportsConnectionQuality)."""
PROTOCOL_LOST = 10
"""Clients above this protocol understand LOST; others get POOR (Go SupportsConnectionQualityLost)."""


# -- the pure scorer ------------------------------------------------------------------------------
def loss_weight(kind: str, mime: str = "") -> float:
    """How much a loss percentage costs (Go getPacketLossWeight; LiveKit clients always offer
    Opus in-band FEC)."""
    mime = mime.lower()
    if kind == "video" or mime.startswith("video/"):
        return 10.0
    if mime == "audio/red":
        return 4.0 / 1.5
    return 8.0 / 1.5


def packet_score(
    report: LinkReport, weight: float, *, include_rtt: bool = True, include_jitter: bool = True
) -> float:
    """100 minus the delay and loss effects (Go windowStat.calculatePacketScore)."""
    delay = 0.0
    if include_rtt and report.rtt_ms is not None:
        delay += report.rtt_ms / 2.0
    if include_jitter:
        delay += report.jitter_ms * 2.0
    delay_effect = (delay - 120.0) / 10.0 if delay > 160.0 else delay / 40.0
    loss_effect = max(0.0, min(1.0, report.fraction_lost)) * 100.0 * weight
    return max(0.0, MAX_SCORE - delay_effect - loss_effect)


def bitrate_score(report: LinkReport) -> float:
    """100 - 20 ln(expected / actual), capped to 0..100; 100 when nothing is expected."""
    if report.expected_bps <= 0:
        return MAX_SCORE
    if report.bitrate_bps <= 0:
        return 0.0
    score = MAX_SCORE - 20.0 * math.log(report.expected_bps / report.bitrate_bps)
    return max(0.0, min(MAX_SCORE, score))


def quality_of(score: float) -> int:
    """Go scoreToConnectionQuality."""
    if score > GOOD_ABOVE:
        return Quality.EXCELLENT
    if score > POOR_ABOVE:
        return Quality.GOOD
    if score > LOST_ABOVE:
        return Quality.POOR
    return Quality.LOST


def mos_of(score: float) -> float:
    """Go scoreToMOS: 1.0..4.5."""
    if score <= 0.0:
        return 1.0
    if score >= MAX_SCORE:
        return MAX_MOS
    return 1.0 + 0.035 * score + 0.000007 * score * (score - 60.0) * (100.0 - score)


@dataclass(slots=True)
class TrackScorer:
    """One track's running score."""

    weight: float
    """``loss_weight`` of its codec."""
    upstream: bool
    """An up track: silence while it should flow degrades it (a down track's silence does not)."""
    score_bitrate: bool = False
    score: float = MAX_SCORE
    dry: int = 0
    """Evaluations in a row without packets while it should flow."""
    active: bool = True
    settling: bool = False
    """It just started to flow again: the next report still covers the pause and is skipped."""

    @property
    def quality(self) -> int:
        return quality_of(self.score)

    @property
    def mos(self) -> float:
        return mos_of(self.score)

    def update(self, report: LinkReport | None, *, active: bool) -> None:
        """One evaluation: ``report`` of the last interval, ``active`` = the track should flow."""
        if not active:
            if self.active and self.score > LOST_ABOVE:
                self.score = MAX_SCORE  # muting is not a quality drop (a LOST stays LOST)
            self.active, self.dry = False, 0
            return
        if not self.active:
            self.active, self.settling = True, True
        if report is None:
            return
        if report.bandwidth_paused:
            self.score = min(self.score, POOR_ABOVE)
            return
        if self.settling:
            self.settling = False
            return
        if report.bitrate_bps <= 0:
            if self.upstream:
                self.dry += 1
                if self.dry >= DRY_LOST:
                    self.score = LOST_ABOVE
                elif self.dry >= DRY_POOR:
                    self.score = min(self.score, POOR_ABOVE)
            return
        self.dry = 0
        score = packet_score(report, self.weight)
        if self.score_bitrate:
            score = min(score, bitrate_score(report))
        factor = DECREASE_FACTOR if score < self.score else INCREASE_FACTOR
        self.score = max(MIN_SCORE, factor * score + (1.0 - factor) * self.score)


def worst(scores: Iterable[tuple[int, float]]) -> tuple[int, float]:
    """(quality, MOS) of the worst track (the lowest MOS among the worst quality), as Go
    ParticipantImpl.GetConnectionQuality; EXCELLENT / 4.5 without tracks."""
    order: dict[int, int] = {Quality.EXCELLENT: 0, Quality.GOOD: 1, Quality.POOR: 2, Quality.LOST: 3}
    best: tuple[int, float] = (Quality.EXCELLENT, MAX_MOS)
    for quality, mos in scores:
        if (order[quality], -mos) > (order[best[0]], -best[1]):
            best = (quality, mos)
    return best


# -- the room's view ------------------------------------------------------------------------------
@dataclass(slots=True)
class ConnectionQualityMonitor:
    """Scores every link in one room and decides who is told what."""

    publishing: Callable[[str], bool] = lambda track_sid: True
    """Whether the publisher of a video track was told to send any layer (dynacast)."""
    _scorers: dict[tuple[str, str], TrackScorer] = field(default_factory=dict)
    _last: dict[str, rtc.ConnectionQualityInfo] = field(default_factory=dict)
    _told_publishers: dict[str, set[str]] = field(default_factory=dict)

    def evaluate(
        self, participants: Iterable[Participant], now: float
    ) -> list[tuple[Participant, rtc.SignalResponse]]:
        """Score every link; returns the ``connection_quality`` messages to send."""
        everyone = [p for p in participants if not p.closed]
        tracks = {sid: (pub, t) for pub in everyone for sid, t in pub.published.items()}
        seen: set[tuple[str, str]] = set()
        infos: dict[str, rtc.ConnectionQualityInfo] = {}
        for p in everyone:
            if p.active:
                infos[p.sid] = self._participant(p, tracks, now, seen)
        for key in [k for k in self._scorers if k not in seen]:
            del self._scorers[key]
        changed = any(
            p.sid not in self._last or self._last[p.sid].quality != infos[p.sid].quality
            for p in everyone
            if p.sid in infos
        )
        self._last = infos
        out: list[tuple[Participant, rtc.SignalResponse]] = []
        for op in everyone:
            if op.sid not in infos or op.protocol <= PROTOCOL_QUALITY:
                continue
            publishers = {tracks[sid][0].sid for sid in op.downtracks if sid in tracks} - {op.sid}
            if not changed and publishers <= self._told_publishers.get(op.sid, set()):
                continue
            self._told_publishers[op.sid] = publishers
            updates = [infos[sid] for sid in (op.sid, *sorted(publishers)) if sid in infos]
            out.append(
                (op, rtc.SignalResponse(connection_quality=rtc.ConnectionQualityUpdate(updates=updates)))
            )
        for sid in [s for s in self._told_publishers if s not in infos]:
            del self._told_publishers[sid]
        return out

    def _participant(
        self,
        p: Participant,
        tracks: dict[str, tuple[Participant, PublishedTrack]],
        now: float,
        seen: set[tuple[str, str]],
    ) -> rtc.ConnectionQualityInfo:
        results: list[tuple[int, float]] = []
        up_active = 0
        up_lost = 0
        for sid, track in p.published.items():
            if track.up is None:
                continue
            video = track.info.type == models.TrackType.VIDEO
            active = not track.info.muted and (not video or self.publishing(sid))
            scorer = self._scorer(("up:" + p.sid, sid), video, track.info.mime_type, upstream=True, seen=seen)
            scorer.update(_report(track.up, now), active=active)
            up_active += active
            up_lost += active and scorer.quality == Quality.LOST
            results.append((scorer.quality, scorer.mos))
        for sid, down in p.downtracks.items():
            found = tracks.get(sid)
            info = found[1].info if found is not None else None
            video = down.kind == "video"
            active = (
                info is not None
                and not info.muted
                and not down.paused
                and (not video or down.requested_max_spatial != NO_LAYER)
            )
            mime = info.mime_type if info is not None else ""
            scorer = self._scorer(("down:" + p.sid, sid), video, mime, upstream=False, seen=seen)
            scorer.update(_report(down, now), active=active)
            results.append((scorer.quality, scorer.mos))
        quality, mos = worst(results)
        if quality == Quality.LOST and up_lost < up_active:
            quality = Quality.POOR  # one silent track among flowing ones: not a lost connection
        if quality == Quality.LOST and p.protocol <= PROTOCOL_LOST:
            quality = Quality.POOR
        return rtc.ConnectionQualityInfo(participant_sid=p.sid, quality=quality, score=mos)  # type: ignore[arg-type]

    def _scorer(
        self, key: tuple[str, str], video: bool, mime: str, *, upstream: bool, seen: set[tuple[str, str]]
    ) -> TrackScorer:
        seen.add(key)
        scorer = self._scorers.get(key)
        if scorer is None:
            weight = loss_weight("video" if video else "audio", mime)
            scorer = TrackScorer(weight, upstream=upstream, score_bitrate=video and not upstream)
            self._scorers[key] = scorer
        return scorer


def _report(link: LinkStats, now: float) -> LinkReport | None:
    """The link's report; None when the media engine measured nothing (or failed to)."""
    try:
        return link.link_report(now)
    except Exception:
        return None
