"""Run every ``bench/bench_*.py`` (or the ones named) and print their reports.

Each benchmark module exposes ``async def run() -> str`` returning a Markdown section.
"""

from __future__ import annotations

import asyncio
import importlib
import platform
import sys
from pathlib import Path


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{platform.platform()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> int:
    names = sys.argv[1:] or sorted(
        p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py")
    )
    print(f"# Parley benchmarks\n\nMachine: {machine()}\n")
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        try:
            report = asyncio.run(module.run())
        except Exception as exc:  # a failing benchmark is reported, the others still run
            failed += 1
            report = f"## {name}\n\nFAILED: {type(exc).__name__}: {exc}\n"
        print(report, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
