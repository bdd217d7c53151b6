"""Run ``scenarios.py`` under a given Python (the main venv's livekit 1.2.x or .venv-agents' 1.1.x)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

SCRIPT = Path(__file__).with_name("scenarios.py")
ROOT = Path(__file__).resolve().parents[3]


def agents_python() -> str:
    return os.environ.get("PARLEY_AGENTS_PYTHON") or str(ROOT / ".venv-agents" / "bin" / "python")


PYTHONS = {"sdk-1.2": sys.executable, "sdk-1.1": agents_python()}


async def run_scenario(
    python: str, scenario: str, args: dict[str, Any], timeout: float = 120, prefix: Sequence[str] = ()
) -> dict[str, Any]:
    """The scenario's ``RESULT`` line comes from stdout alone: the SDK's native logs go to stderr and,
    merged, could land in the middle of it. ``prefix`` wraps the command, e.g. ``NetNamespace.prefix``
    to run the scenario inside a network namespace."""
    proc = await asyncio.create_subprocess_exec(
        *prefix,
        python,
        str(SCRIPT),
        scenario,
        json.dumps(args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"{scenario} timed out:\n{_tail(out, err)}") from None
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise AssertionError(f"{scenario} failed (exit {proc.returncode}):\n{_tail(out, err)}")


def _tail(out: bytes, err: bytes) -> str:
    return (
        f"--- stdout ---\n{out.decode(errors='replace')[-3000:]}\n"
        f"--- stderr ---\n{err.decode(errors='replace')[-5000:]}"
    )


async def path_counts(metrics_url: str) -> dict[str, float]:
    """The edge's ``parley_rtc_connections_total`` per path, from its /metrics."""
    counts = {"v0": 0.0, "v1": 0.0}
    async with aiohttp.ClientSession() as http, http.get(metrics_url) as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("parley_rtc_connections_total{"):
            for path in counts:
                if f'path="{path}"' in line:
                    counts[path] = float(line.rsplit(" ", 1)[1])
    return counts


async def run_on_path(
    stack: Any, sdk: str, path: str, scenario: str, connections: int, **extra: Any
) -> dict[str, Any]:
    """Run a scenario against a ``parley.testing.Stack`` with one SDK over one signalling path and
    assert its ``connections`` joins all used that path (no fallback, no reconnect)."""
    metrics = f"http://127.0.0.1:{stack.edge().health_port}/metrics"
    args = {
        "url": stack.ws_url,
        "key": stack.api_key,
        "secret": stack.api_secret,
        "room": f"room-{uuid.uuid4().hex[:8]}",
        "path": path,
        **extra,
    }
    before = await path_counts(metrics)
    result = await run_scenario(PYTHONS[sdk], scenario, args)
    after = await path_counts(metrics)
    other = "v0" if path == "v1" else "v1"
    assert after[path] - before[path] == connections, (scenario, before, after)
    assert after[other] == before[other], (scenario, before, after)
    return result
