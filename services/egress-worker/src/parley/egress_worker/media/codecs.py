"""The codec of a tapped track and the container it is recorded in (never transcoded)."""

from __future__ import annotations

from dataclasses import dataclass

from parley.egress_worker.media.errors import UnsupportedCodec

CONTAINERS = {"audio/opus": ("ogg", ".ogg"), "video/vp8": ("webm", ".webm"), "video/h264": ("mp4", ".mp4")}
"""mime type (lower case) -> (PyAV format, extension): LiveKit's track egress choices."""


@dataclass(frozen=True, slots=True)
class TrackCodec:
    mime_type: str
    clock_rate: int
    channels: int = 0
    fmtp: str = ""

    @property
    def kind(self) -> str:
        return self.mime_type.split("/", 1)[0].lower()


def container_for(mime_type: str) -> tuple[str, str]:
    """(PyAV format name, file extension) for ``mime_type``; raises UnsupportedCodec."""
    found = CONTAINERS.get(mime_type.lower())
    if found is None:
        raise UnsupportedCodec(f"{mime_type.lower()} is not yet supported")
    return found
