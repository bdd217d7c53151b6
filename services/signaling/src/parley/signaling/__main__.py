"""``python -m parley.signaling``."""

from __future__ import annotations

import sys

from parley.runtime import run_service
from parley.signaling.app import build
from parley.signaling.config import SignalingConfig


def main() -> None:
    sys.exit(run_service("signaling", SignalingConfig, build))


if __name__ == "__main__":
    main()
