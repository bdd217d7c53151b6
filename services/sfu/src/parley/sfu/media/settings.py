"""The RtcConfig that ``configure()`` installed, for code that needs it on the media path."""

from __future__ import annotations

from parley.config import RtcConfig

_current = RtcConfig()


def settings() -> RtcConfig:
    return _current


def install(rtc: RtcConfig) -> None:
    global _current
    _current = rtc
