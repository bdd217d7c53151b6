"""``python -m parley.egress_worker``."""

from __future__ import annotations

import sys

from parley.egress_worker.app import build
from parley.egress_worker.config import EgressWorkerConfig
from parley.runtime import run_service


def main() -> None:
    sys.exit(run_service("egress-worker", EgressWorkerConfig, build))


if __name__ == "__main__":
    main()
