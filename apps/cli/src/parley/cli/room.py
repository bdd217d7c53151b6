"""``parley room list|create|delete`` through the official Room API client (livekit-api)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from parley.cli.errors import ApiCallError
from parley.cli.options import ApiOptions, add_api_options, api_options

if TYPE_CHECKING:
    from livekit import api
    from livekit.protocol import models

T = TypeVar("T")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    room = commands.add_parser("room", help="rooms, through the Room API")
    actions = room.add_subparsers(dest="room_command", required=True, metavar="{list,create,delete}")

    listing = actions.add_parser("list", help="list rooms")
    add_api_options(listing)
    listing.add_argument("names", nargs="*", help="only these rooms")
    listing.set_defaults(handler=lambda a: _run(a, _list))

    create = actions.add_parser("create", help="create a room")
    add_api_options(create)
    create.add_argument("name")
    create.add_argument("--empty-timeout", type=int, default=0, help="seconds an unused room stays open")
    create.add_argument(
        "--departure-timeout", type=int, default=0, help="seconds a room stays open after the last leaves"
    )
    create.add_argument("--max-participants", type=int, default=0, help="0 = unlimited")
    create.add_argument("--metadata", default="", help="room metadata")
    create.set_defaults(handler=lambda a: _run(a, _create))

    delete = actions.add_parser("delete", help="delete a room (disconnects everyone in it)")
    add_api_options(delete)
    delete.add_argument("name")
    delete.set_defaults(handler=lambda a: _run(a, _delete))


def _run(
    args: argparse.Namespace, action: Callable[[api.LiveKitAPI, argparse.Namespace], Awaitable[T]]
) -> int:
    import aiohttp
    from livekit import api

    opts = api_options(args)

    async def call() -> T:
        async with _client(opts) as client:
            return await action(client, args)

    try:
        asyncio.run(call())
    except api.TwirpError as exc:
        raise ApiCallError(f"{exc.code}: {exc.message}") from exc
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise ApiCallError(f"cannot reach {opts.url}: {exc or type(exc).__name__}") from exc
    return 0


def _client(opts: ApiOptions) -> api.LiveKitAPI:
    from livekit import api

    return api.LiveKitAPI(opts.url, opts.api_key, opts.api_secret, failover=False)


async def _list(client: api.LiveKitAPI, args: argparse.Namespace) -> None:
    from livekit import api

    response = await client.room.list_rooms(api.ListRoomsRequest(names=args.names))
    rows = [format_room(room) for room in response.rooms]
    header = ("NAME", "SID", "PARTICIPANTS", "CREATED", "METADATA")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


async def _create(client: api.LiveKitAPI, args: argparse.Namespace) -> None:
    from livekit import api

    room = await client.room.create_room(
        api.CreateRoomRequest(
            name=args.name,
            empty_timeout=args.empty_timeout,
            departure_timeout=args.departure_timeout,
            max_participants=args.max_participants,
            metadata=args.metadata,
        )
    )
    print(f"created room {room.name} ({room.sid})")


async def _delete(client: api.LiveKitAPI, args: argparse.Namespace) -> None:
    from livekit import api

    await client.room.delete_room(api.DeleteRoomRequest(room=args.name))
    print(f"deleted room {args.name}")


def format_room(room: models.Room) -> tuple[str, str, str, str, str]:
    created = (
        datetime.fromtimestamp(room.creation_time, UTC).strftime("%Y-%m-%d %H:%M:%S")
        if room.creation_time
        else ""
    )
    return room.name, room.sid, str(room.num_participants), created, room.metadata
