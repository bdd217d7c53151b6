"""Errors of the media path (depacketizing and muxing)."""

from __future__ import annotations


class MediaError(Exception):
    """Base of the media errors."""


class UnsupportedCodec(MediaError):
    """A codec this worker cannot record without transcoding."""


class MuxError(MediaError):
    """The container cannot be written."""
