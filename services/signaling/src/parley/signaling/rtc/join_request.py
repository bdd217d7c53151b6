"""What a client asks for when it connects: v0 query parameters or the v1 join_request."""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from livekit.protocol import models, rtc

from parley.signaling.rtc.errors import BadRequest

_SDK = {
    "js": models.ClientInfo.SDK.JS,
    "python": models.ClientInfo.SDK.PYTHON,
    "go": models.ClientInfo.SDK.GO,
    "rust": models.ClientInfo.SDK.RUST,
    "swift": models.ClientInfo.SDK.SWIFT,
    "android": models.ClientInfo.SDK.ANDROID,
    "flutter": models.ClientInfo.SDK.FLUTTER,
    "unity": models.ClientInfo.SDK.UNITY,
    "reactnative": models.ClientInfo.SDK.REACT_NATIVE,
    "cpp": models.ClientInfo.SDK.CPP,
    "node": models.ClientInfo.SDK.NODE,
}


@dataclass(slots=True)
class ConnectParams:
    """The connection settings of one client, independent of the path it used."""

    client_info: models.ClientInfo = field(default_factory=models.ClientInfo)
    auto_subscribe: bool = True
    adaptive_stream: bool = False
    reconnect: bool = False
    reconnect_reason: int = 0
    """``livekit.ReconnectReason`` of a resume."""
    participant_sid: str = ""
    single_peer_connection: bool = False
    publisher_offer: rtc.SessionDescription | None = None

    @property
    def protocol(self) -> int:
        return int(self.client_info.protocol)

    @property
    def path(self) -> str:
        return "v1" if self.single_peer_connection else "v0"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.lower() in ("1", "true", "yes")


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def parse_v0_query(query: Mapping[str, str]) -> ConnectParams:
    """``/rtc?sdk=…&protocol=…&auto_subscribe=…&reconnect=…`` (livekit-protocol §2.2)."""
    info = models.ClientInfo(
        sdk=_SDK.get(query.get("sdk", "").lower(), models.ClientInfo.SDK.UNKNOWN),
        version=query.get("version", ""),
        protocol=_int(query.get("protocol")),
        os=query.get("os", ""),
        os_version=query.get("os_version", ""),
        device_model=query.get("device_model", ""),
        browser=query.get("browser", ""),
        browser_version=query.get("browser_version", ""),
        network=query.get("network", ""),
        client_protocol=_int(query.get("client_protocol")),
    )
    return ConnectParams(
        client_info=info,
        auto_subscribe=_flag(query.get("auto_subscribe"), True),
        adaptive_stream=_flag(query.get("adaptive_stream"), False),
        reconnect=_flag(query.get("reconnect"), False),
        reconnect_reason=_int(query.get("reconnect_reason")),
        participant_sid=query.get("sid", ""),
    )


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
"""The base64url alphabet (RFC 4648 §5), padding optional (JS pads, others may not)."""


def decode_base64url(value: str) -> bytes:
    """Strict base64url: any character outside the alphabet, or a bad length, raises BadRequest.

    ``base64.urlsafe_b64decode`` silently drops such characters, so garbage would decode to an
    empty (and valid) WrappedJoinRequest and the client would join with default settings.
    """
    if not _BASE64URL.fullmatch(value):
        raise BadRequest("invalid join_request: not base64url")
    unpadded = value.rstrip("=")
    try:
        return base64.b64decode(unpadded + "=" * (-len(unpadded) % 4), altchars=b"-_", validate=True)
    except binascii.Error as exc:
        raise BadRequest(f"invalid join_request: {exc}") from exc


def decode_join_request(value: str) -> rtc.JoinRequest:
    """``/rtc/v1?join_request=`` base64url(WrappedJoinRequest{NONE|GZIP, JoinRequest})."""
    raw = decode_base64url(value)
    try:
        wrapped = rtc.WrappedJoinRequest()
        wrapped.ParseFromString(raw)
        payload = wrapped.join_request
        if wrapped.compression == rtc.WrappedJoinRequest.Compression.GZIP:
            payload = gzip.decompress(payload)
        request = rtc.JoinRequest()
        request.ParseFromString(payload)
    except (ValueError, DecodeError, OSError, EOFError) as exc:
        raise BadRequest(f"invalid join_request: {exc}") from exc
    return request


def parse_v1(query: Mapping[str, str]) -> ConnectParams:
    """``/rtc/v1``: everything comes from the join_request (livekit-protocol §2.7)."""
    value = query.get("join_request", "")
    if not value:
        raise BadRequest("join_request is required")
    request = decode_join_request(value)
    settings = request.connection_settings
    return ConnectParams(
        client_info=request.client_info,
        auto_subscribe=settings.auto_subscribe,
        adaptive_stream=settings.adaptive_stream,
        reconnect=request.reconnect,
        reconnect_reason=int(request.reconnect_reason),
        participant_sid=request.participant_sid,
        single_peer_connection=True,
        publisher_offer=request.publisher_offer if request.HasField("publisher_offer") else None,
    )
