"""/rtc/v1 join_request decoding: strict base64url (RFC 4648 §5), padding optional."""

from __future__ import annotations

import base64

import pytest
from livekit.protocol import models, rtc

from parley.signaling.rtc.errors import BadRequest
from parley.signaling.rtc.join_request import decode_base64url, decode_join_request

pytestmark = pytest.mark.unit


def wrapped(identity_protocol: int = 18) -> bytes:
    request = rtc.JoinRequest(client_info=models.ClientInfo(protocol=identity_protocol))
    return rtc.WrappedJoinRequest(join_request=request.SerializeToString()).SerializeToString()


@pytest.mark.parametrize("padded", [True, False])
def test_valid_base64url_decodes_with_or_without_padding(padded: bool) -> None:
    raw = wrapped() + b"\xfb\xff"  # bytes that need '-' and '_' in base64url
    text = base64.urlsafe_b64encode(raw).decode()
    assert decode_base64url(text if padded else text.rstrip("=")) == raw


@pytest.mark.parametrize(
    "value",
    ["!!!%%%***", "CAA*", "CA=A", "A", "AAAAA", "a+b/", "ab cd", "AA===", "Zm9v\n"],
)
def test_anything_else_is_a_bad_request(value: str) -> None:
    with pytest.raises(BadRequest) as info:
        decode_base64url(value)
    assert info.value.status == 400 and "join_request" in info.value.message


def test_garbage_no_longer_decodes_to_an_empty_join_request() -> None:
    with pytest.raises(BadRequest):
        decode_join_request("!!!%%%***")
    text = base64.urlsafe_b64encode(wrapped(17)).decode().rstrip("=")
    assert decode_join_request(text).client_info.protocol == 17
