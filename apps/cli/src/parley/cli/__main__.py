"""``parley``: the command line of Parley (``dev``, ``token``, ``room``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from parley.cli import dev, room, tokens
from parley.cli.errors import CliError
from parley.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parley",
        description="Parley, a LiveKit-compatible realtime server. "
        "Server options also come from LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{dev,token,room}")
    dev.register(commands)
    tokens.register(commands)
    room.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return 2
    except CliError as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return exc.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
