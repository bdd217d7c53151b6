"""TURN REST API credentials, as coturn's ``use-auth-secret`` checks them.

``username = "<expiry unix seconds>:<user>"`` and ``password = base64(HMAC-SHA1(secret, username))``
(draft-uberti-behave-turn-rest-00 §2.2). coturn refuses the username once the expiry has passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9_.@+-]")
MAX_USER_CHARS = 128


@dataclass(frozen=True, slots=True)
class TurnCredential:
    username: str
    password: str
    expires_at: int


def rest_user(participant_sid: str, identity: str) -> str:
    """The user part: the participant sid when known, else its identity with unsafe characters
    replaced (coturn splits the username at ':', and STUN usernames must stay short)."""
    raw = participant_sid or identity or "anonymous"
    return _UNSAFE.sub("_", raw)[:MAX_USER_CHARS]


def rest_username(user: str, expires_at: int) -> str:
    return f"{expires_at}:{user}"


def rest_password(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def mint(secret: str, user: str, *, expires_at: int) -> TurnCredential:
    username = rest_username(user, expires_at)
    return TurnCredential(username=username, password=rest_password(secret, username), expires_at=expires_at)
