"""Twirp bodies: protobuf or protobuf JSON (camelCase or snake_case in, snake_case with defaults out)."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from parley.signaling.api.errors import ApiError

M = TypeVar("M", bound=Message)

PROTOBUF = "application/protobuf"
JSON = "application/json"


def encoding_of(content_type: str) -> str | None:
    base = content_type.split(";", 1)[0].strip().lower()
    if base in (PROTOBUF, "application/x-protobuf"):
        return PROTOBUF
    if base == JSON:
        return JSON
    return None


def decode(body: bytes, encoding: str, message_type: type[M]) -> M:
    message = message_type()
    try:
        if encoding == PROTOBUF:
            message.ParseFromString(body)
        else:
            json_format.Parse(body.decode() if body.strip() else "{}", message, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as exc:
        raise ApiError("malformed", f"the request body could not be decoded: {exc}") from exc
    return message


def encode(message: Message, encoding: str) -> bytes:
    if encoding == PROTOBUF:
        return message.SerializeToString()
    return json_format.MessageToJson(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=None
    ).encode()
