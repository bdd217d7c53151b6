"""Egress ids: ``EG_`` + 12 base62 characters, as LiveKit mints them."""

from __future__ import annotations

import secrets
import string
from typing import NewType

EgressID = NewType("EgressID", str)
WorkerID = NewType("WorkerID", str)

EGRESS_PREFIX = "EG_"
_ALPHABET = string.ascii_letters + string.digits


def new_egress_id() -> EgressID:
    return EgressID(EGRESS_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(12)))
