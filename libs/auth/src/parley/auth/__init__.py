"""LiveKit-compatible access tokens: grants, claims, HS256 signing and verification."""

from parley.auth.errors import (
    AuthError,
    InvalidSignature,
    MalformedToken,
    MissingExpiry,
    MissingToken,
    PermissionDenied,
    TokenExpired,
    TokenNotYetValid,
    UnknownApiKey,
)
from parley.auth.grants import SOURCES, Claims, VideoGrant
from parley.auth.tokens import LEEWAY_SECONDS, TokenVerifier, bearer_token, claims_from_payload, create_token

__all__ = [
    "LEEWAY_SECONDS",
    "SOURCES",
    "AuthError",
    "Claims",
    "InvalidSignature",
    "MalformedToken",
    "MissingExpiry",
    "MissingToken",
    "PermissionDenied",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenVerifier",
    "UnknownApiKey",
    "VideoGrant",
    "bearer_token",
    "claims_from_payload",
    "create_token",
]
