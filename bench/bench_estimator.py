"""Subscriber bandwidth estimation: how fast the send-side estimate (parley.sfu.media.congestion)
follows a bandwidth drop and recovers, on a simulated bottleneck (deterministic: no network, no
wall-clock waits; 1200-byte packets paced at min(estimate, 5 Mbit/s), TWCC-like feedback every 50 ms,
25 ms one-way delay, 300 ms drop-tail queue).

Scenario: 3 Mbit/s for 10 s, 500 kbit/s for 10 s, 3 Mbit/s again for 30 s. Recovery is shown without
probing (GCC's increase only) and with the prober asking for a 2.75 Mbit/s goal (a deficient 720p
layer, 10 % margin), which is how the SFU climbs back.
"""

from __future__ import annotations

import time

from parley.sfu.media.congestion.prober import Prober
from parley.sfu.media.congestion.simulation import BottleneckLink, Simulation

HIGH, LOW = 3_000_000, 500_000
GOAL = 2_750_000


def _scenario(probing: bool) -> tuple[Simulation, float, int]:
    link = BottleneckLink(HIGH)
    sim = Simulation(link)
    if probing:
        prober = Prober()

        def probe(now: float) -> float | None:
            est = sim.estimator.estimate
            prober.update(now, goal_bps=GOAL if est < GOAL else None, estimate_bps=est)
            return prober.goal_bps if prober.probing else None

        sim.probe = probe
    start = time.perf_counter()
    sim.run_until(10)
    link.capacity_bps = LOW
    sim.run_until(20)
    link.capacity_bps = HIGH
    sim.run_until(50)
    return sim, time.perf_counter() - start, sim.packets_sent


def _mean(sim: Simulation, start: float, end: float) -> float:
    values = [s.estimate for s in sim.samples if start <= s.t < end]
    return sum(values) / len(values)


def _fmt(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


async def run() -> str:
    lines = [
        "## Subscriber bandwidth estimation (simulated bottleneck)",
        "",
        "| probing | drop 3M->500k: below 600k | mean 12-20 s (cap 500k) | recovery to 1.5M | to 2.5M | mean 45-50 s (cap 3M) | CPU per packet |",
        "|---|---|---|---|---|---|---|",
    ]
    for probing in (False, True):
        sim, elapsed, packets = _scenario(probing)
        lines.append(
            f"| {'yes' if probing else 'no'} "
            f"| {_fmt(sim.time_to(10, lambda e: e <= 600_000))} "
            f"| {_mean(sim, 12, 20) / 1000:.0f} kbit/s "
            f"| {_fmt(sim.time_to(20, lambda e: e >= 1_500_000))} "
            f"| {_fmt(sim.time_to(20, lambda e: e >= 2_500_000))} "
            f"| {_mean(sim, 45, 50) / 1000:.0f} kbit/s "
            f"| {elapsed / packets * 1e6:.1f} µs |"
        )
    lines += [
        "",
        "CPU per packet: send history + feedback + estimator + the simulation itself, one core.",
    ]
    return "\n".join(lines) + "\n"
