"""LiveKit's size limits on API input; a breach answers invalid_argument."""

from __future__ import annotations

from collections.abc import Mapping

from parley.signaling.api.errors import invalid

MAX_ROOM_NAME_BYTES = 256
MAX_IDENTITY_BYTES = 256
MAX_METADATA_BYTES = 512 * 1024
MAX_ATTRIBUTES_BYTES = 64 * 1024


def room_name(name: str, *, required: bool = True) -> None:
    if required and not name:
        raise invalid("room name is required")
    if len(name.encode()) > MAX_ROOM_NAME_BYTES:
        raise invalid(f"room name exceeds {MAX_ROOM_NAME_BYTES} bytes")


def identity(value: str) -> None:
    if not value:
        raise invalid("participant identity is required")
    if len(value.encode()) > MAX_IDENTITY_BYTES:
        raise invalid(f"participant identity exceeds {MAX_IDENTITY_BYTES} bytes")


def metadata(value: str) -> None:
    if len(value.encode()) > MAX_METADATA_BYTES:
        raise invalid(f"metadata exceeds {MAX_METADATA_BYTES} bytes")


def attributes(values: Mapping[str, str]) -> None:
    size = sum(len(k.encode()) + len(v.encode()) for k, v in values.items())
    if size > MAX_ATTRIBUTES_BYTES:
        raise invalid(f"attributes exceed {MAX_ATTRIBUTES_BYTES} bytes")
