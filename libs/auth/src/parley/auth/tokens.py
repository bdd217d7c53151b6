"""HS256 access tokens as LiveKit mints and verifies them (60 s leeway, ``exp`` required)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import jwt
from google.protobuf import json_format
from livekit.protocol.room import RoomConfiguration

from parley.auth.errors import (
    InvalidSignature,
    MalformedToken,
    MissingExpiry,
    MissingToken,
    TokenExpired,
    TokenNotYetValid,
    UnknownApiKey,
)
from parley.auth.grants import Claims, VideoGrant

LEEWAY_SECONDS = 60
DEFAULT_TTL_SECONDS = 6 * 3600
ALGORITHM = "HS256"


def create_token(api_key: str, api_secret: str, claims: Claims, *, ttl: float = DEFAULT_TTL_SECONDS) -> str:
    """Sign ``claims`` (``api_key`` becomes ``iss``); ``nbf``/``exp`` default to now and now+ttl."""
    now = int(time.time())
    filled = replace(
        claims,
        api_key=api_key,
        not_before=claims.not_before or now,
        expires_at=claims.expires_at or int(now + ttl),
    )
    return jwt.encode(filled.to_payload(), api_secret, algorithm=ALGORITHM)


class TokenVerifier:
    """Verifies tokens against the configured keys (``{api_key: secret}``)."""

    def __init__(self, keys: Mapping[str, str], *, leeway: int = LEEWAY_SECONDS) -> None:
        self._keys = dict(keys)
        self._leeway = leeway

    def secret_for(self, api_key: str) -> str | None:
        return self._keys.get(api_key)

    def verify(self, token: str | None) -> Claims:
        if not token:
            raise MissingToken("no access token")
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.DecodeError as exc:
            raise MalformedToken(f"malformed token: {exc}") from exc
        if not isinstance(unverified, dict):
            raise MalformedToken("malformed token: claims are not an object")
        api_key = unverified.get("iss")
        if not isinstance(api_key, str) or api_key not in self._keys:
            raise UnknownApiKey("invalid API key")
        try:
            payload = jwt.decode(
                token,
                self._keys[api_key],
                algorithms=[ALGORITHM],
                leeway=self._leeway,
                issuer=api_key,
                options={"require": ["exp"]},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise MissingExpiry("token has no exp claim") from exc
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("token is expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenNotYetValid("token is not valid yet") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidSignature("invalid token signature") from exc
        except jwt.InvalidTokenError as exc:
            raise MalformedToken(f"invalid token: {exc}") from exc
        return claims_from_payload(api_key, payload)


def claims_from_payload(api_key: str, payload: Mapping[str, Any]) -> Claims:
    try:
        video = payload.get("video") or {}
        if not isinstance(video, dict):
            raise MalformedToken("video grant is not an object")
        room_config = None
        if isinstance(payload.get("roomConfig"), dict):
            room_config = RoomConfiguration()
            json_format.ParseDict(payload["roomConfig"], room_config, ignore_unknown_fields=True)
        attributes = payload.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise MalformedToken("attributes is not an object")
        return Claims(
            api_key=api_key,
            identity=str(payload.get("sub") or ""),
            name=str(payload.get("name") or ""),
            metadata=str(payload.get("metadata") or ""),
            attributes={str(k): str(v) for k, v in attributes.items()},
            kind=str(payload.get("kind") or ""),
            kind_details=[str(k) for k in payload.get("kindDetails") or []],
            video=VideoGrant.from_json(video),
            sip=dict(payload.get("sip") or {}),
            agent=dict(payload.get("agent") or {}),
            inference=dict(payload.get("inference") or {}),
            observability=dict(payload.get("observability") or {}),
            room_config=room_config,
            room_preset=str(payload.get("roomPreset") or ""),
            sha256=str(payload.get("sha256") or ""),
            not_before=int(payload.get("nbf") or 0),
            expires_at=int(payload.get("exp") or 0),
            issued_at=int(payload.get("iat") or 0),
            jwt_id=str(payload.get("jti") or ""),
        )
    except json_format.ParseError as exc:
        raise MalformedToken(f"roomConfig is invalid: {exc}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise MalformedToken(f"claims of the wrong shape: {exc}") from exc


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <jwt>`` header; None when absent."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MalformedToken("authorization header is not 'Bearer <token>'")
    return token.strip()
