"""speakers_changed from the UpTracks' audio levels, evaluated every ~500 ms per room."""

from __future__ import annotations

from collections.abc import Iterable

from livekit.protocol import models, rtc

from parley.sfu.participant import Participant


def level_of(p: Participant) -> float:
    level = 0.0
    for track in p.published.values():
        if track.up is None or track.info.muted or track.info.type != models.TrackType.AUDIO:
            continue
        try:
            level = max(level, float(track.up.audio_level))
        except Exception:
            continue
    return level


class SpeakerTracker:
    def __init__(self, threshold: float) -> None:
        self._threshold = threshold
        self._active: dict[str, float] = {}

    def evaluate(self, participants: Iterable[Participant]) -> rtc.SpeakersChanged | None:
        """The change since the last call, or None."""
        current: dict[str, float] = {}
        for p in participants:
            if p.closed or p.hidden:
                continue
            level = level_of(p)
            if level > self._threshold:
                current[p.sid] = level
        if set(current) == set(self._active):
            self._active = current
            return None
        speakers = [
            models.SpeakerInfo(sid=sid, level=level, active=True)
            for sid, level in sorted(current.items(), key=lambda kv: -kv[1])
        ]
        speakers += [
            models.SpeakerInfo(sid=sid, level=0.0, active=False) for sid in self._active if sid not in current
        ]
        self._active = current
        return rtc.SpeakersChanged(speakers=speakers)
