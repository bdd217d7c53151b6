"""``python -m parley.egress``."""

from __future__ import annotations

import sys

from parley.egress.app import build
from parley.egress.config import EgressConfig
from parley.runtime import run_service


def main() -> None:
    sys.exit(run_service("egress", EgressConfig, build))


if __name__ == "__main__":
    main()
