"""The stored copy of a request hides secrets, as LiveKit's ``egress/redact.go`` does: storage
credentials become ``{access_key}``, ``{secret}``…, an RTMP stream key ``{abc...xyz}`` and URL query
values ``{...}``. The unredacted request stays in the job record only (workers need it)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

from google.protobuf.message import Message
from livekit.protocol import egress as lk

_SECRETS: dict[str, tuple[str, ...]] = {
    "S3Upload": ("access_key", "secret", "session_token", "assume_role_external_id"),
    "GCPUpload": ("credentials",),
    "AzureBlobUpload": ("account_name", "account_key"),
    "AliOSSUpload": ("access_key", "secret"),
}


def redact_url(url: str) -> str:
    """``rtmp://host/app/streamkey`` → ``rtmp://host/app/{str...key}``; query values → ``{...}``."""
    parts = urlsplit(url)
    path = parts.path
    if parts.scheme in ("rtmp", "rtmps") and "/" in path.strip("/"):
        head, _, key = path.rpartition("/")
        if key:
            path = f"{head}/{_stream_key(key)}"
    query = parts.query
    if query:
        query = "&".join(f"{k}={{...}}" for k, _ in parse_qsl(query, keep_blank_values=True))
    return urlunsplit((parts.scheme, parts.netloc, path, query, parts.fragment))


def _stream_key(key: str) -> str:
    return "{" + key[:3] + "..." + key[-3:] + "}" if len(key) > 6 else "{...}"


def redact(message: Message) -> None:
    """Redact ``message`` in place (every nested upload config and stream URL)."""
    name = message.DESCRIPTOR.name
    for field_name in _SECRETS.get(name, ()):
        if getattr(message, field_name):
            setattr(message, field_name, "{" + field_name + "}")
    if isinstance(message, lk.StreamOutput):
        urls = [redact_url(u) for u in message.urls]
        del message.urls[:]
        message.urls.extend(urls)
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            continue
        if isinstance(value, Message):
            redact(value)
        else:
            for item in value:
                redact(item)
