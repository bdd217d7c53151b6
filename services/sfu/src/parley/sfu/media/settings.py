"""Settings of the media engine: the publisher bandwidth-estimate knobs (``bwe.py``) and how they
follow from the ``rtc`` config section. A ``MediaContext`` holds the ones in force (``context.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from parley.config import RtcConfig
from parley.observability import get_logger
from parley.sfu.media.errors import MediaConfigError


@dataclass(frozen=True, slots=True)
class BweSettings:
    """The REMB the SFU sends to each publisher peer connection (see ``bwe.py``)."""

    min_bps: int = 1_500_000
    """Floor: never ask for less. Enough for a 720p simulcast's top layer to be enabled (libwebrtc needs
    the lower layers' targets plus the top layer's minimum, about 1.2 Mbit/s for q/h/f of 720p)."""
    start_bps: int = 3_000_000
    """The first estimate, sent with the first packet: libwebrtc adopts it during its 2 s start phase,
    enough for every layer of a 720p simulcast (h720 1.7 + h360 0.45 + h180 0.16 Mbit/s)."""
    max_bps: int = 10_000_000
    """Cap of the estimate."""
    low_loss: float = 0.02
    """Below this loss fraction the estimate grows by ``increase`` per second."""
    high_loss: float = 0.10
    """Above this loss fraction the estimate drops to ``estimate * (1 - loss / 2)``."""
    increase: float = 0.08
    """Relative growth per second while loss is low (GCC's loss controller: 8 %/s)."""
    min_packets: int = 20
    """Loss is judged only over at least this many expected packets (accumulated across windows)."""

    def __post_init__(self) -> None:
        if not 0 < self.min_bps <= self.start_bps <= self.max_bps:
            raise ValueError("need 0 < min_bps <= start_bps <= max_bps")
        if not 0 <= self.low_loss <= self.high_loss <= 1:
            raise ValueError("need 0 <= low_loss <= high_loss <= 1")


_log = get_logger("parley.sfu.media")


def bwe_from_config(rtc: RtcConfig) -> BweSettings:
    """The estimate bounds of ``rtc.bwe_min_bitrate`` / ``bwe_start_bitrate`` / ``bwe_max_bitrate``.

    A start value outside ``[min, max]`` is clamped into it (so that lowering only the cap works);
    a floor above the cap is a configuration error."""
    low, start, high = rtc.bwe_min_bitrate, rtc.bwe_start_bitrate, rtc.bwe_max_bitrate
    if low > high:
        raise MediaConfigError(f"rtc.bwe_min_bitrate ({low}) must not exceed rtc.bwe_max_bitrate ({high})")
    clamped = min(max(start, low), high)
    if clamped != start:
        _log.warning("rtc.bwe_start_bitrate clamped into [bwe_min_bitrate, bwe_max_bitrate]", start=clamped)
    return BweSettings(min_bps=low, start_bps=clamped, max_bps=high)
