"""LiveKit-style ids: a prefix and 12 base62 characters."""

from __future__ import annotations

import secrets
import string
import time
from typing import NewType

_ALPHABET = string.ascii_letters + string.digits

WorkerID = NewType("WorkerID", str)
JobID = NewType("JobID", str)
DispatchID = NewType("DispatchID", str)

WORKER_PREFIX = "AW_"
JOB_PREFIX = "AJ_"
DISPATCH_PREFIX = "AD_"
EVENT_PREFIX = "EV_"


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def now_ms() -> int:
    return int(time.time() * 1000)
