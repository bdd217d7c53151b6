"""``python -m parley.dispatch``."""

from __future__ import annotations

import sys

from parley.dispatch.app import build
from parley.dispatch.config import DispatchConfig
from parley.runtime import run_service


def main() -> None:
    sys.exit(run_service("dispatch", DispatchConfig, build))


if __name__ == "__main__":
    main()
