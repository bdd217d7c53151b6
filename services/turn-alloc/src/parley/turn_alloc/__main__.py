"""``python -m parley.turn_alloc``."""

from __future__ import annotations

import sys

from parley.runtime import run_service
from parley.turn_alloc.app import build
from parley.turn_alloc.config import TurnAllocConfig


def main() -> None:
    sys.exit(run_service("turn-alloc", TurnAllocConfig, build))


if __name__ == "__main__":
    main()
