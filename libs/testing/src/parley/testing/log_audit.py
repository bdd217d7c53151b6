"""The whole suite's logs hold no token and no API secret.

Every process a test starts (services, nats-server, Valkey, coturn, `parley dev`) logs under the
pytest temporary directory. At the end of the session ``audit`` reads every ``*.log`` there and
reports each line carrying the test API secret or anything shaped like a JWT (or the start of one:
base64url JSON objects begin with ``eyJ``), which the services' redaction should have replaced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from parley.testing.stack import TEST_API_SECRET

_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}")
DEV_API_SECRET_ASSIGNMENT = re.compile(r"devkey\s*[:=]\s*secret\b")
"""The dev key pair as the dev config writes it (``devkey: secret``): the dev secret itself is the
common word "secret", so only its assignment is looked for."""


@dataclass(frozen=True, slots=True)
class Leak:
    path: Path
    line_number: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_number}: {self.what}"


def leaks_in(path: Path, secrets: Iterable[str] = (TEST_API_SECRET,)) -> list[Leak]:
    found: list[Leak] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return found
    for number, line in enumerate(text.splitlines(), start=1):
        for secret in secrets:
            if secret in line:
                found.append(Leak(path, number, "the API secret"))
        if _JWT_LIKE.search(line):
            found.append(Leak(path, number, "a token (JWT-shaped text)"))
        if DEV_API_SECRET_ASSIGNMENT.search(line):
            found.append(Leak(path, number, "the dev API secret"))
    return found


def audit(root: Path) -> list[Leak]:
    """Every leak in the ``*.log`` files under ``root``."""
    found: list[Leak] = []
    for path in sorted(root.rglob("*.log")):
        if path.is_file():
            found += leaks_in(path)
    return found
