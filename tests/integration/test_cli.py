"""The parley command as a user runs it: tokens verify everywhere, rooms through the Room API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from livekit import api

from parley.auth import TokenVerifier
from parley.testing import Stack

pytestmark = pytest.mark.integration

PARLEY = Path(sys.executable).parent / "parley"


def parley(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    return subprocess.run(
        [str(PARLEY), *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=60
    )


def test_token_create_verifies_with_parley_and_livekit() -> None:
    result = parley(
        "token", "create", "--room", "blue", "--identity", "alice", "--name", "Alice",
        "--metadata", "md", "--attribute", "role=host", "--kind", "agent", "--valid-for", "10m",
        "--grant", "canPublish=false,canUpdateOwnMetadata", "--allow-source", "microphone",
        "--room-config", json.dumps({"agents": [{"agentName": "helper"}]}),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    claims = TokenVerifier({"devkey": "secret"}).verify(token)
    assert (claims.identity, claims.name, claims.metadata, claims.kind) == ("alice", "Alice", "md", "agent")
    assert claims.attributes == {"role": "host"}
    assert claims.video.room_join and claims.video.room == "blue"
    assert claims.video.can_publish is False and claims.video.can_update_own_metadata is True
    assert claims.video.can_publish_sources == ["microphone"]
    assert claims.room_config is not None and claims.room_config.agents[0].agent_name == "helper"
    assert claims.expires_at - claims.not_before == 600
    got = api.TokenVerifier("devkey", "secret").verify(token)
    assert got.identity == "alice" and got.video is not None and got.video.room_join


def test_token_create_reads_livekit_env_and_admin() -> None:
    secret = "env-secret-0123456789abcdefghijklmnop"
    result = parley(
        "token", "create", "--admin", "--room", "r",
        env={"LIVEKIT_API_KEY": "APIenv", "LIVEKIT_API_SECRET": secret},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    claims = TokenVerifier({"APIenv": secret}).verify(result.stdout.strip())
    video = claims.video
    assert video.room_admin and video.room_create and video.room_list and video.room_record
    assert not video.room_join
    flag = parley("token", "create", "--admin", "--api-key", "APIflag", "--api-secret", secret, "--room", "r",
                  env={"LIVEKIT_API_KEY": "APIenv", "LIVEKIT_API_SECRET": "other"})  # fmt: skip
    assert TokenVerifier({"APIflag": secret}).verify(flag.stdout.strip()).api_key == "APIflag"


def test_token_create_refuses_bad_input() -> None:
    assert "--identity" in parley("token", "create", "--room", "r").stderr
    bad = parley("token", "create", "--room", "r", "--identity", "a", "--grant", "fly")
    assert bad.returncode == 2 and "unknown grant 'fly'" in bad.stderr
    assert "invalid duration" in parley("token", "create", "-r", "r", "-i", "a", "--valid-for", "soon").stderr


def test_room_create_list_delete(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(services=["room-state", "signaling"])
    opts = ["--url", stack.http_url, "--api-key", stack.api_key, "--api-secret", stack.api_secret]

    created = parley("room", "create", "cli-room", "--empty-timeout", "120", "--metadata", "m1", *opts)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created room cli-room (RM_")

    listed = parley("room", "list", *opts)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "SID", "PARTICIPANTS"]
    assert any(row.split()[0] == "cli-room" and row.split()[-1] == "m1" for row in rows), listed.stdout

    deleted = parley("room", "delete", "cli-room", *opts)
    assert deleted.returncode == 0, deleted.stderr
    assert "cli-room" not in parley("room", "list", *opts).stdout

    env = {"LIVEKIT_URL": stack.http_url, "LIVEKIT_API_KEY": stack.api_key, "LIVEKIT_API_SECRET": "wrong" * 8}
    refused = parley("room", "list", env=env)
    assert refused.returncode == 1 and "unauthenticated" in refused.stderr


def test_room_list_unreachable_server() -> None:
    result = parley("room", "list", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1 and "cannot reach" in result.stderr
