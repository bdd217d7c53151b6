"""What a recording left behind holds (a part whose worker was lost): FFmpeg's demuxer reads it."""

from __future__ import annotations

from pathlib import Path

import av


def recorded_duration(path: Path) -> float | None:
    """Seconds of media in ``path`` (the last packet's end), None when it cannot be read. Works on a
    file whose writer was killed (OGG pages and WebM clusters written so far; fragmented MP4)."""
    try:
        with av.open(str(path), mode="r") as container:
            stream = container.streams[0]
            end = 0.0
            for packet in container.demux(stream):
                if packet.pts is None or packet.time_base is None:
                    continue
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
            return end
    except Exception:  # a truncated header: nothing usable
        return None
