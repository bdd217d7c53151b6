"""Output file names, as LiveKit egress makes them.

A path may use ``{room_name} {room_id} {track_id} {time} {utc}`` (``{time}`` is local time
``2006-01-02T150405``, ``{utc}`` the same in UTC). An empty path or one ending in ``/`` gets
``{track_id}-{time}``. The codec's extension is added when the path has none. Part n > 0 of a job
that continued on another worker inserts ``-n`` before the extension, or fills ``{retry}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True, slots=True)
class NameFields:
    room_name: str
    room_id: str
    track_id: str
    at: float
    """Unix seconds the name is made at."""


def _stamp(at: float, utc: bool) -> str:
    return time.strftime("%Y-%m-%dT%H%M%S", time.gmtime(at) if utc else time.localtime(at))


def file_name(template: str, fields: NameFields, extension: str, part: int = 0) -> str:
    """The storage key (or local relative path) of a recording."""
    path = template.strip().lstrip("/")
    if not path or path.endswith("/"):
        path += "{track_id}-{time}"
    has_retry = "{retry}" in path
    for key, value in (
        ("{room_name}", fields.room_name),
        ("{room_id}", fields.room_id),
        ("{track_id}", fields.track_id),
        ("{time}", _stamp(fields.at, utc=False)),
        ("{utc}", _stamp(fields.at, utc=True)),
        ("{retry}", str(part)),
    ):
        path = path.replace(key, value)
    pure = PurePosixPath(path)
    if not pure.suffix:
        pure = pure.with_name(pure.name + extension)
    if part and not has_retry:
        pure = pure.with_name(f"{pure.stem}-{part}{pure.suffix}")
    return str(pure)
