"""``python -m parley.webhook``."""

from __future__ import annotations

import sys

from parley.runtime import run_service
from parley.webhook.app import build
from parley.webhook.config import WebhookServiceConfig


def main() -> None:
    sys.exit(run_service("webhook", WebhookServiceConfig, build))


if __name__ == "__main__":
    main()
