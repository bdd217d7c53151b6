"""LiveKit-style ids: a prefix and 12 base62 characters."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def _random(n: int = 12) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def track_sid() -> str:
    return f"TR_{_random()}"
