"""Which worker gets a job: random among the available ones, weighted by 1 - load (as LiveKit)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from parley.dispatch.records import WorkerRecord


def weighted_order(workers: Sequence[WorkerRecord], rng: random.Random | None = None) -> list[WorkerRecord]:
    """All ``workers``, in the order to offer them a job: a weighted draw without replacement."""
    rng = rng or random.Random()
    left = list(workers)
    order: list[WorkerRecord] = []
    while left:
        weights = [max(w.weight(), 1e-6) for w in left]
        pick = rng.choices(range(len(left)), weights=weights)[0]
        order.append(left.pop(pick))
    return order


def eligible(
    workers: Sequence[WorkerRecord], threshold: float, now_ms: int, timeout_ms: int
) -> list[WorkerRecord]:
    return [w for w in workers if w.available(threshold) and now_ms - w.updated_ms <= timeout_ms]
