"""Errors of the media engine."""

from __future__ import annotations


class MediaError(Exception):
    """Base class of media engine errors."""


class AiortcIncompatibleError(MediaError):
    """The installed aiortc/aioice no longer has a private API the engine relies on."""


class NotConfiguredError(MediaError):
    """``configure()`` was not called before creating peer connections."""


class MediaConfigError(MediaError, ValueError):
    """The ``rtc`` settings given to ``configure()`` contradict each other."""


class SenderInUseError(MediaError):
    """A DownTrack was attached to a transceiver whose sender still carries an open DownTrack."""


class IceRestartError(MediaError):
    """A peer connection cannot restart ICE now (ICE not started on it, or it was stopped)."""


class TapError(MediaError):
    """An RTP tap cannot start: its track has no codec yet, or its socket cannot be opened."""
