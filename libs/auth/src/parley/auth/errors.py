"""Token errors: each refusal has its own class and a Twirp-style code."""

from __future__ import annotations


class AuthError(Exception):
    """Root of token errors. ``code`` is the wire code (Twirp/gRPC), ``status`` the HTTP one."""

    code = "unauthenticated"
    status = 401


class MalformedToken(AuthError):
    """Not a JWT, or claims of the wrong shape."""


class MissingToken(AuthError):
    """No token in the request."""


class UnknownApiKey(AuthError):
    """``iss`` names no configured key."""


class InvalidSignature(AuthError):
    """Signed with another secret."""


class TokenExpired(AuthError):
    """``exp`` is in the past (beyond the leeway)."""


class TokenNotYetValid(AuthError):
    """``nbf`` is in the future (beyond the leeway)."""


class MissingExpiry(AuthError):
    """LiveKit requires ``exp``."""


class PermissionDenied(AuthError):
    """A valid token without the grant the call needs (LiveKit answers unauthenticated too)."""

    code = "permission_denied"
    status = 403
