"""Global options shared by the commands: where the server is and which key signs requests.

Like LiveKit's ``lk``: ``--url/--api-key/--api-secret``, falling back to ``LIVEKIT_URL``,
``LIVEKIT_API_KEY`` and ``LIVEKIT_API_SECRET``, then to the dev defaults.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_URL = "http://127.0.0.1:7880"


@dataclass(frozen=True, slots=True)
class ApiOptions:
    url: str
    api_key: str
    api_secret: str


def add_api_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server")
    group.add_argument("--url", default=None, help=f"server URL (env LIVEKIT_URL; default {DEFAULT_URL})")
    group.add_argument("--api-key", default=None, help="API key (env LIVEKIT_API_KEY; default devkey)")
    group.add_argument(
        "--api-secret", default=None, help="API secret (env LIVEKIT_API_SECRET; default secret)"
    )


def api_options(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> ApiOptions:
    """Flags win over env vars, env vars over the dev defaults."""
    from parley.config import DEV_API_KEY, DEV_API_SECRET  # pydantic: only when a command runs

    environ = os.environ if env is None else env
    return ApiOptions(
        url=args.url or environ.get("LIVEKIT_URL") or DEFAULT_URL,
        api_key=args.api_key or environ.get("LIVEKIT_API_KEY") or DEV_API_KEY,
        api_secret=args.api_secret or environ.get("LIVEKIT_API_SECRET") or DEV_API_SECRET,
    )
