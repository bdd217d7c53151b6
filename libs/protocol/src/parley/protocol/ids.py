"""LiveKit-style ids (a prefix and 12 base62 characters) and wall-clock milliseconds.

Hand-written, beside the generated ``gen`` package: every service that mints ids shares these
prefixes so an id's owner is visible from its first three characters.
"""

from __future__ import annotations

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits

ROOM_PREFIX = "RM_"
PARTICIPANT_PREFIX = "PA_"
TRACK_PREFIX = "TR_"
EVENT_PREFIX = "EV_"
WORKER_PREFIX = "AW_"
JOB_PREFIX = "AJ_"
DISPATCH_PREFIX = "AD_"


def new_id(prefix: str) -> str:
    """``prefix`` followed by 12 random base62 characters."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def now_ms() -> int:
    """Wall-clock time in Unix milliseconds, as LiveKit's timestamps carry it."""
    return int(time.time() * 1000)
