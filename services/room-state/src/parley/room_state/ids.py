"""LiveKit-style ids: a prefix and 12 base62 characters."""

from __future__ import annotations

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits

ROOM_PREFIX = "RM_"
PARTICIPANT_PREFIX = "PA_"
TRACK_PREFIX = "TR_"
EVENT_PREFIX = "EV_"


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def now_ms() -> int:
    return int(time.time() * 1000)
