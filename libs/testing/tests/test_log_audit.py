"""The end-of-session log audit finds tokens and the API secret, and nothing else."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from parley.auth import Claims, VideoGrant, create_token
from parley.observability.redact import redact
from parley.testing.log_audit import audit
from parley.testing.stack import TEST_API_KEY, TEST_API_SECRET

pytestmark = pytest.mark.unit


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory outside pytest's temporary tree: the session audit must not see these leaks."""
    with tempfile.TemporaryDirectory(prefix="log-audit-") as path:
        yield Path(path)


def _token() -> str:
    return create_token(
        TEST_API_KEY, TEST_API_SECRET, Claims(identity="alice", video=VideoGrant(room_join=True))
    )


def test_a_token_a_truncated_token_and_the_secret_are_found(outside: Path) -> None:
    token = _token()
    (outside / "svc").mkdir()
    (outside / "svc" / "signaling-0.log").write_text(
        f"ok line\nGET /rtc?access_token={token}\nclaims {token.split('.')[1][:30]}\n"
        f"config secret={TEST_API_SECRET}\n"
    )
    (outside / "other.txt").write_text(token)  # not a log
    leaks = audit(outside)
    assert [(leak.line_number, leak.what) for leak in leaks] == [
        (2, "a token (JWT-shaped text)"),
        (3, "a token (JWT-shaped text)"),
        (4, "the API secret"),
    ]
    assert "signaling-0.log:2" in str(leaks[0])


def test_redacted_logs_pass(outside: Path) -> None:
    token = _token()
    (outside / "signaling-0.log").write_text(
        redact(f"GET /rtc?access_token={token}&x=1\nAuthorization: Bearer {token}\n") + "api secret: [set]\n"
    )
    assert audit(outside) == []
