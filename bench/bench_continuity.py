"""Media continuity: how long a listener hears nothing when a session is disrupted and comes back.

Each disruption is a function (``DISRUPTIONS``) that starts a stack (``parley.testing.Stack``) set up
for it and yields a :class:`Setup`: the URL and command prefix the clients use, and what ``disrupt``
and ``restore`` do. Every run is one ``bench/continuity_client.py`` process (official Python SDK) in
a new room: Alice publishes a tone, Bob timestamps the audio frames he receives; the client asks the
bench, over a small HTTP control endpoint, to disrupt (and, where the disruption needs it, to restore
once an SDK reported ``reconnecting``). The media gap is the longest interval between two audible
frames at Bob from 1 s before the disruption to the end of the run: last tone before the disruption
-> first tone after it, as heard (the SDK's jitter buffer and concealment included). Each run is
bounded by ``RUN_TIMEOUT_S``.

Disruptions so far:

- ``signal_resume``: every signalling connection is cut at a ``TcpProxy`` between the clients and the
  edge (new ones accepted at once); the SDKs resume the session (``tests/integration/test_resume.py``).
- ``ice_restart``: both clients run inside a ``NetNamespace``; its UDP is blocked until an SDK reports
  ``reconnecting`` (its failure detection), then unblocked; the session comes back through an ICE
  restart. Reported split: detection (block -> reconnecting) and restoration (unblock -> tone again).

- ``drain`` / ``node_loss``: two SFUs; the one hosting the room gets SIGTERM (it moves its rooms) or
  SIGKILL (room-state notices after ``node_ttl`` and moves the room); the SDKs rejoin on the other
  node (``tests/integration/test_node_continuity.py``); the node is started again after each run.

A new disruption is one more function returning an ``async`` context manager, added to ``DISRUPTIONS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from parley.testing import NetNamespace, Stack, TcpProxy, stack_config

RUNS = int(os.environ.get("BENCH_CONTINUITY_RUNS", "5"))
ONLY = [n for n in os.environ.get("BENCH_CONTINUITY", "").split(",") if n]
"""Run only these disruptions (default: all)."""
RUN_TIMEOUT_S = 120.0
SETTLE_S = 2.0
"""Audible audio before the disruption."""
AFTER_S = 3.0
"""Audible audio after both SDKs are connected again."""
DEADLINE_S = 60.0
"""Client-side bound on each wait after the disruption."""
WINDOW_BEFORE_S = 1.0
AUDIBLE = 3000
CLIENT = Path(__file__).with_name("continuity_client.py")
SERVICES = ["room-state", "sfu", "signaling"]


Action = Callable[[str], Awaitable[None]]
"""Something the bench does to the stack for one run, given the run's room name."""


@dataclass
class Setup:
    """A stack ready for one kind of disruption."""

    stack: Stack
    url: str
    """The clients' signalling URL."""
    control_host: str
    """Where the control endpoint listens (reachable by the clients)."""
    disrupt: Action
    """Called with the run's room name when the client asks."""
    restore: Action | None = None
    """Called once an SDK reported ``reconnecting``; None: nothing to undo."""
    prefix: list[str] = field(default_factory=list)
    """Command prefix for the client process (e.g. ``NetNamespace.prefix``)."""
    after_run: Action | None = None
    """Called after each run (e.g. bring a killed node back for the next one)."""


Disruption = Callable[[Path], contextlib.AbstractAsyncContextManager[Setup]]


@contextlib.asynccontextmanager
async def signal_resume(log_dir: Path) -> AsyncIterator[Setup]:
    stack = await asyncio.to_thread(Stack(log_dir=log_dir, services=SERVICES).start)
    proxy: TcpProxy | None = None
    try:
        proxy = await TcpProxy(stack.edge().port).start()
        cut = proxy.cut

        async def disrupt(room: str) -> None:
            if cut() < 2:
                raise RuntimeError("expected both clients' signalling connections through the proxy")

        yield Setup(stack, f"ws://127.0.0.1:{proxy.port}", "127.0.0.1", disrupt)
    finally:
        if proxy is not None:
            await proxy.aclose()
        await asyncio.to_thread(stack.stop)


@contextlib.asynccontextmanager
async def ice_restart(log_dir: Path) -> AsyncIterator[Setup]:
    ns = await asyncio.to_thread(NetNamespace)
    try:
        stack = await asyncio.to_thread(
            Stack(log_dir=log_dir, services=SERVICES, config=stack_config(ns)).start
        )
        try:

            async def block(room: str) -> None:
                await asyncio.to_thread(ns.block_udp)

            async def unblock(room: str) -> None:
                await asyncio.to_thread(ns.unblock_udp)

            yield Setup(stack, ns.ws_url(stack), ns.host_ip, block, unblock, ns.prefix)
        finally:
            await asyncio.to_thread(ns.unblock_udp)
            await asyncio.to_thread(stack.stop)
    finally:
        await asyncio.to_thread(ns.close)


NODE_CONFIG = {"room_state": {"node_ttl": 3.0}, "sfu": {"stats_interval": 0.5, "drain_timeout": 20.0}}
"""As tests/integration/test_node_continuity.py: a lost node is noticed after 3 s without heartbeats."""


def _hosting_sfu(stack: Stack, room: str) -> int:
    hosts = [i.index for i in stack.all("sfu") if f"room={room}" in stack.log("sfu", i.index)]
    if len(hosts) != 1:
        raise RuntimeError(f"room {room} found on SFUs {hosts}")
    return hosts[0]


def _node_change(sig: signal.Signals) -> Disruption:
    """Two SFUs; the one hosting the run's room gets ``sig`` (SIGKILL: node loss, room-state moves the
    room after ``node_ttl``; SIGTERM: drain, the node moves its rooms); it is started again after the
    run. The SDKs rejoin on the other node (a new subscription, so Bob's stream is a new one)."""

    @contextlib.asynccontextmanager
    async def node_change(log_dir: Path) -> AsyncIterator[Setup]:
        stack = Stack(log_dir=log_dir, services=SERVICES, config=NODE_CONFIG, instances={"sfu": 2})
        await asyncio.to_thread(stack.start)
        hit: list[int] = []
        try:

            async def disrupt(room: str) -> None:
                index = _hosting_sfu(stack, room)
                proc = stack.get("sfu", index).process.proc
                if proc is None:
                    raise RuntimeError(f"sfu-{index} is not running")
                proc.send_signal(sig)
                hit.append(index)

            async def bring_back(room: str) -> None:
                while hit:
                    instance = stack.get("sfu", hit.pop())
                    proc = instance.process.proc
                    if proc is not None:  # a draining node exits by itself (a 2nd SIGTERM would cut it short)
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            await asyncio.to_thread(proc.wait, 30)
                    await asyncio.to_thread(instance.process.stop)
                    stack.running.remove(instance)
                    await asyncio.to_thread(stack.restart, "sfu", instance.index)
                await asyncio.sleep(2 * NODE_CONFIG["sfu"]["stats_interval"])  # its stats reach room-state

            yield Setup(stack, stack.ws_url, "127.0.0.1", disrupt, after_run=bring_back)
        finally:
            await asyncio.to_thread(stack.stop)

    return node_change


DISRUPTIONS: dict[str, tuple[str, Disruption]] = {
    "signal_resume": ("signalling resume (every connection cut at a TCP proxy)", signal_resume),
    "ice_restart": ("ICE restart (UDP blocked in a netns until an SDK notices, then unblocked)", ice_restart),
    "drain": (
        "drain (SIGTERM to the hosting SFU; rooms move to the other node)",
        _node_change(signal.SIGTERM),
    ),
    "node_loss": (
        f"node loss (SIGKILL to the hosting SFU; room-state moves the room after node_ttl "
        f"{NODE_CONFIG['room_state']['node_ttl']:.0f} s)",
        _node_change(signal.SIGKILL),
    ),
}


# ------------------------------------------------------------------------------------------ one run


@contextlib.asynccontextmanager
async def _control(setup: Setup) -> AsyncIterator[str]:
    """The endpoint the client calls at the moments it chooses; yields its URL."""
    app = web.Application()

    def handler(action: Action | None) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            if action is not None:
                await action(request.query["room"])
            return web.Response(text="ok")

        return handle

    app.router.add_post("/disrupt", handler(setup.disrupt))
    app.router.add_post("/restore", handler(setup.restore))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, setup.control_host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://{setup.control_host}:{port}"
    finally:
        await runner.cleanup()


async def _run_client(setup: Setup, control: str, room: str) -> dict[str, Any]:
    args = {
        "url": setup.url,
        "key": setup.stack.api_key,
        "secret": setup.stack.api_secret,
        "room": room,
        "control": control,
        "restore_on_reconnecting": setup.restore is not None,
        "settle_s": SETTLE_S,
        "after_s": AFTER_S,
        "deadline_s": DEADLINE_S,
    }
    proc = await asyncio.create_subprocess_exec(
        *setup.prefix,
        sys.executable,
        str(CLIENT),
        json.dumps(args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise RuntimeError(f"continuity client did not finish in {RUN_TIMEOUT_S:.0f} s") from None
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise RuntimeError(
        f"continuity client failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}"
    )


@dataclass
class Sample:
    gap_s: float
    """Longest silence between audible frames around the disruption."""
    baseline_s: float
    """Longest interval between audible frames in the second before the disruption (frame cadence)."""
    last_before_s: float
    first_after_s: float
    """Times of the frames bounding the gap, relative to the disruption."""
    reconnecting_s: float | None
    reconnected_s: float | None
    restored_s: float | None
    complete: bool
    silent_frames: int
    """Frames the stream yielded inside the gap (concealment or silence: the stream does not stop)."""


def _sample(result: dict[str, Any]) -> Sample:
    frames = [(t, peak) for t, peak in result["frames"] if t >= -WINDOW_BEFORE_S]
    audible = [t for t, peak in frames if peak > AUDIBLE]
    best = (0.0, 0.0, 0.0)
    for a, b in itertools.pairwise(audible):
        if b - a > best[0]:
            best = (b - a, a, b)
    before = [t for t in audible if t < 0]
    baseline = max((b - a for a, b in itertools.pairwise(before)), default=0.0)
    complete = bool(result["complete"]) and bool(audible) and audible[-1] > best[2]
    reconnecting = [t for t, _, e in result["events"] if e == "reconnecting"]
    return Sample(
        gap_s=best[0],
        baseline_s=baseline,
        last_before_s=best[1],
        first_after_s=best[2],
        reconnecting_s=min(reconnecting) if reconnecting else None,
        reconnected_s=result.get("reconnected_at"),
        restored_s=result.get("restored_at"),
        complete=complete,
        silent_frames=sum(1 for t, peak in frames if best[1] < t < best[2]),
    )


async def _measure(name: str, runs: int) -> list[Sample | str]:
    """One sample per run, or why the run failed (the other runs still go on)."""
    _, disruption = DISRUPTIONS[name]
    samples: list[Sample | str] = []
    with tempfile.TemporaryDirectory(prefix=f"parley-bench-{name}-") as tmp:
        async with disruption(Path(tmp)) as setup, _control(setup) as control:
            for _ in range(runs):
                room = f"continuity-{uuid.uuid4().hex[:8]}"
                try:
                    samples.append(_sample(await _run_client(setup, control, room)))
                except RuntimeError as exc:
                    samples.append(str(exc).splitlines()[0][:200].replace("|", "/"))
                finally:
                    if setup.after_run is not None:
                        await setup.after_run(room)
    return samples


# ------------------------------------------------------------------------------------------ report


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _ms(values: list[float]) -> str:
    if not values:
        return "- | -"
    return f"{_pct(values, 0.5) * 1000:,.0f} | {max(values) * 1000:,.0f}"


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def run() -> str:
    from livekit import rtc

    names = ONLY or list(DISRUPTIONS)
    lines = [
        "## Media continuity (bench_continuity)",
        "",
        f"Python SDK livekit {rtc.__version__} (/rtc/v1), one room-state, SFU and edge; {RUNS} runs per "
        "disruption, each a new room with two clients in one process: Alice publishes a 440 Hz tone, Bob "
        "timestamps every frame of his AudioStream. Gap = longest interval between two audible frames "
        f"(peak > {AUDIBLE}) from {WINDOW_BEFORE_S:.0f} s before the disruption on: last tone heard -> first "
        "tone heard again (jitter buffer and concealment included). Times from the disruption. "
        "Command: `python -m bench continuity`.",
        "",
        "| disruption | runs ok | gap p50 ms | gap max ms | undisturbed max interval ms | SDK reconnecting p50 / max ms "
        "| restore -> tone p50 / max ms | SDK reconnected p50 / max ms | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    details: list[str] = []
    for name in names:
        label = DISRUPTIONS[name][0]
        samples = await _measure(name, RUNS)
        ok = [s for s in samples if isinstance(s, Sample) and s.complete]
        restore = [s.first_after_s - s.restored_s for s in ok if s.restored_s is not None]
        lines.append(
            f"| {label} | {len(ok)}/{len(samples)} | {_ms([s.gap_s for s in ok])} | "
            f"{max((s.baseline_s for s in ok), default=0.0) * 1000:,.0f} | "
            f"{_ms([s.reconnecting_s for s in ok if s.reconnecting_s is not None]).replace(' | ', ' / ')} | "
            f"{_ms(restore).replace(' | ', ' / ')} | "
            f"{_ms([s.reconnected_s for s in ok if s.reconnected_s is not None]).replace(' | ', ' / ')} | "
            f"{_loadavg()} |"
        )
        for i, s in enumerate(samples):
            if isinstance(s, str):
                details.append(f"| {name} | {i + 1} | failed: {s} | | | | | | | |")
                continue
            details.append(
                f"| {name} | {i + 1} | {'yes' if s.complete else 'no'} | {s.gap_s * 1000:,.0f} | "
                f"{s.last_before_s * 1000:,.0f} | {s.first_after_s * 1000:,.0f} | {_opt(s.reconnecting_s)} | "
                f"{_opt(s.restored_s)} | {_opt(s.reconnected_s)} | {s.silent_frames} |"
            )
    lines += [
        "",
        "Every run (ms from the disruption; silent frames = frames the stream yielded inside the gap):",
        "",
        "| disruption | run | complete | gap | last tone | tone again | reconnecting | restored | reconnected "
        "| silent frames |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *details,
        "",
    ]
    return "\n".join(lines)


def _opt(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.0f}"
