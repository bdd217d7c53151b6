"""``python -m parley.room_state``."""

from __future__ import annotations

import sys

from parley.room_state.app import build
from parley.room_state.config import RoomStateConfig
from parley.runtime import run_service


def main() -> None:
    sys.exit(run_service("room-state", RoomStateConfig, build))


if __name__ == "__main__":
    main()
