"""Run ``scenarios.py`` under a given Python (the main venv's livekit 1.2.x or .venv-agents' 1.1.x)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("scenarios.py")
ROOT = Path(__file__).resolve().parents[3]


def agents_python() -> str:
    return os.environ.get("PARLEY_AGENTS_PYTHON") or str(ROOT / ".venv-agents" / "bin" / "python")


PYTHONS = {"sdk-1.2": sys.executable, "sdk-1.1": agents_python()}


async def run_scenario(
    python: str, scenario: str, args: dict[str, Any], timeout: float = 120
) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        python,
        str(SCRIPT),
        scenario,
        json.dumps(args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        raise AssertionError(f"{scenario} timed out:\n{out.decode(errors='replace')[-6000:]}") from None
    text = out.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise AssertionError(f"{scenario} failed (exit {proc.returncode}):\n{text[-6000:]}")
