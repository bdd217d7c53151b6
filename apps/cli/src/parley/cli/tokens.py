"""``parley token create``: mint an access token the way LiveKit's ``lk token create`` does."""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import fields

from google.protobuf import json_format
from jwt.warnings import InsecureKeyLengthWarning
from livekit.protocol.room import RoomConfiguration

from parley.auth import SOURCES, Claims, VideoGrant, create_token
from parley.cli.durations import parse_duration
from parley.cli.errors import UsageError
from parley.cli.options import add_api_options, api_options

KINDS = ("standard", "ingress", "egress", "sip", "agent", "connector", "bridge")
_BOOL_GRANTS = {
    f.name: f.name
    for f in fields(VideoGrant)
    if f.name not in ("room", "destination_room", "can_publish_sources")
}
ADMIN_GRANTS = ("room_admin", "room_create", "room_list", "room_record")
ROLE_GRANTS = (*ADMIN_GRANTS, "room_join", "ingress_admin", "agent")
"""Grants that say what a token is for; with none of them given, the token is a join token."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser("token", help="access tokens")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="create")
    create = actions.add_parser(
        "create",
        help="print a signed access token",
        description="Print a signed access token. Without grant options it is a join token for --room.",
    )
    add_api_options(create)
    create.add_argument("--room", "-r", default="", help="room the grants apply to")
    create.add_argument("--identity", "-i", default="", help="participant identity (sub)")
    create.add_argument("--name", "-n", default="", help="participant display name")
    create.add_argument("--metadata", default="", help="participant metadata")
    create.add_argument(
        "--grant",
        "-g",
        action="append",
        default=[],
        metavar="GRANT[=BOOL],...",
        help="video grants, comma separated, camelCase or snake_case (roomJoin,canPublish=false,...)",
    )
    create.add_argument("--join", action="store_true", help="roomJoin for --room (the default)")
    create.add_argument("--admin", action="store_true", help="roomAdmin, roomCreate, roomList, roomRecord")
    create.add_argument(
        "--allow-source",
        action="append",
        default=[],
        choices=SOURCES,
        help="restrict publishing to these sources (repeatable)",
    )
    create.add_argument("--valid-for", default="6h", help="lifetime: 30s, 10m, 6h, 1d (default 6h)")
    create.add_argument("--kind", choices=KINDS, default="", help="participant kind")
    create.add_argument(
        "--attribute", "-a", action="append", default=[], metavar="KEY=VALUE", help="participant attribute"
    )
    create.add_argument("--room-config", default="", metavar="JSON", help="RoomConfiguration as JSON")
    create.add_argument("--sha256", default="", help="sha256 claim (webhook payload digest)")
    create.set_defaults(handler=run_create)


def run_create(args: argparse.Namespace) -> int:
    opts = api_options(args)
    claims = build_claims(args)
    with warnings.catch_warnings():
        # the dev secret ("secret") is short on purpose; the server refuses such keys outside dev mode
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        token = create_token(opts.api_key, opts.api_secret, claims, ttl=parse_duration(args.valid_for))
    print(token)
    return 0


def build_claims(args: argparse.Namespace) -> Claims:
    video = VideoGrant(room=args.room)
    explicit = bool(args.admin)
    for item in args.grant:
        for part in filter(None, (p.strip() for p in item.split(","))):
            name, value = _parse_grant(part)
            setattr(video, name, value)
            explicit = explicit or name in ROLE_GRANTS
    if args.admin:
        for name in ADMIN_GRANTS:
            setattr(video, name, True)
    if args.join or not explicit:
        video.room_join = True
    if args.allow_source:
        video.can_publish_sources = list(dict.fromkeys(args.allow_source))
    if video.room_join and not (args.room and args.identity):
        raise UsageError("a join token needs --room and --identity")
    if (video.room_admin or video.room_join) and not args.room:
        raise UsageError("roomAdmin and roomJoin apply to one room: pass --room")
    return Claims(
        identity=args.identity,
        name=args.name,
        metadata=args.metadata,
        attributes=_attributes(args.attribute),
        kind=args.kind,
        video=video,
        room_config=_room_config(args.room_config),
        sha256=args.sha256,
    )


def _parse_grant(part: str) -> tuple[str, bool]:
    key, sep, raw = part.partition("=")
    name = _snake(key.strip())
    if name not in _BOOL_GRANTS:
        known = ", ".join(sorted(_camel(n) for n in _BOOL_GRANTS))
        raise UsageError(f"unknown grant {key!r}; known: {known}")
    if not sep:
        return name, True
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise UsageError(f"grant {key!r}: {raw!r} is not a boolean")
    return name, value in ("true", "1", "yes")


def _attributes(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"attribute {item!r}: use KEY=VALUE")
        out[key] = value
    return out


def _room_config(text: str) -> RoomConfiguration | None:
    if not text:
        return None
    try:
        return json_format.ParseDict(json.loads(text), RoomConfiguration())
    except (ValueError, json_format.ParseError) as exc:
        raise UsageError(f"--room-config: {exc}") from exc


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)
