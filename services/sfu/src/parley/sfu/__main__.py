"""``python -m parley.sfu``: one SFU node."""

from __future__ import annotations

import sys

from parley.runtime import run_service
from parley.sfu.app import build
from parley.sfu.config import SfuConfig


def main() -> None:
    sys.exit(run_service("sfu", SfuConfig, build))


if __name__ == "__main__":
    main()
