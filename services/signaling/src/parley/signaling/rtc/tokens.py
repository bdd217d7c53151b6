"""refresh_token: a fresh token with the same claims, signed with the key that signed the original."""

from __future__ import annotations

from dataclasses import replace

from parley.auth import Claims, create_token

REFRESH_TTL_SECONDS = 10 * 60
REFRESH_INTERVAL_SECONDS = 5 * 60


def refreshed_token(claims: Claims, secret: str) -> str:
    fresh = replace(claims, not_before=0, expires_at=0, issued_at=0)
    return create_token(claims.api_key, secret, fresh, ttl=REFRESH_TTL_SECONDS)
