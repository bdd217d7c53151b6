"""Exponential backoff with jitter between ``backoff_min`` and ``backoff_max``."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    minimum: float
    maximum: float
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        "Equal jitter": half the exponential step is fixed, half random, so retries of many
        events spread out but a recovering endpoint is still probed at least every ``maximum``.
        """
        step = min(self.maximum, self.minimum * self.factor ** max(0, attempt - 1))
        draw = (rng or random).random()
        return max(self.minimum, min(self.maximum, step / 2 + draw * step / 2))
