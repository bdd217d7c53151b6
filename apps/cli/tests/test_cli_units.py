"""Units of the parley command: durations, token claims, what parley dev hands each service."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley.cli import devconfig
from parley.cli.__main__ import build_parser, main
from parley.cli.durations import parse_duration
from parley.cli.errors import UsageError
from parley.cli.options import api_options
from parley.cli.tokens import build_claims
from parley.config import ConfigError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("10m", 600), ("6h", 21600), ("1d", 86400), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "0", "1h-2m", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def claims(*argv: str):  # type: ignore[no-untyped-def]
    return build_claims(build_parser().parse_args(["token", "create", *argv]))


def test_default_token_is_a_join_token() -> None:
    got = claims("--room", "r", "--identity", "a")
    assert got.video.room_join and got.video.room == "r"
    assert got.video.can_publish is None  # absent: LiveKit's default (true) applies


def test_permission_grants_keep_the_join_default_and_role_grants_replace_it() -> None:
    assert claims("-r", "r", "-i", "a", "--grant", "canPublish=false").video.room_join
    listing = claims("--grant", "roomList")
    assert listing.video.room_list and not listing.video.room_join
    admin = claims("--admin", "--room", "r", "--join", "--identity", "a")
    assert admin.video.room_admin and admin.video.room_join and admin.video.room_create
    snake = claims("-r", "r", "-i", "a", "--grant", "can_subscribe=no, hidden")
    assert snake.video.can_subscribe is False and snake.video.hidden is True


def test_token_usage_errors() -> None:
    with pytest.raises(UsageError, match="--room and --identity"):
        claims("--room", "r")
    with pytest.raises(UsageError, match="pass --room"):
        claims("--grant", "roomAdmin")
    with pytest.raises(UsageError, match="not a boolean"):
        claims("-r", "r", "-i", "a", "--grant", "canPublish=maybe")
    with pytest.raises(UsageError, match="KEY=VALUE"):
        claims("-r", "r", "-i", "a", "--attribute", "novalue")
    with pytest.raises(UsageError, match="room-config"):
        claims("-r", "r", "-i", "a", "--room-config", "{not json")


def test_api_options_flag_over_env_over_defaults() -> None:
    args = build_parser().parse_args(["room", "list", "--api-key", "flag"])
    got = api_options(args, env={"LIVEKIT_API_KEY": "env", "LIVEKIT_URL": "http://lk:1"})
    assert (got.url, got.api_key, got.api_secret) == ("http://lk:1", "flag", "secret")
    assert api_options(build_parser().parse_args(["room", "list"]), env={}).url == "http://127.0.0.1:7880"


def test_main_reports_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "create", "--room", "r"]) == 2
    assert "parley: a join token needs" in capsys.readouterr().err


def plan(tmp_path: Path, *sets: str, env: dict[str, str] | None = None, **kw: object) -> devconfig.DevPlan:
    options: dict[str, object] = {"config_file": None, "port": None, "nats_url": None, "redis_address": None}
    options.update(kw)
    return devconfig.plan(sets=list(sets), env=env or {}, **options)  # type: ignore[arg-type]


def test_dev_plan_defaults_start_embedded_parts(tmp_path: Path) -> None:
    got = plan(tmp_path)
    assert got.embedded_nats and got.embedded_valkey
    assert got.config.development and got.config.rtc.use_loopback
    assert got.config.keys == {"devkey": "secret"} and got.config.port == 7880


def test_dev_plan_external_parts_from_flags_file_or_env(tmp_path: Path) -> None:
    assert not plan(tmp_path, nats_url="nats://x:4222").embedded_nats
    assert not plan(tmp_path, redis_address="r:6379").embedded_valkey
    assert not plan(tmp_path, env={"PARLEY_NATS_URL": "nats://e:1"}).embedded_nats
    path = tmp_path / "c.yaml"
    path.write_text("redis:\n  address: file:6379\nport: 7001\nrtc:\n  use_loopback: false\n")
    from_file = plan(tmp_path, "port=7002", config_file=str(path))
    assert not from_file.embedded_valkey and from_file.embedded_nats
    assert from_file.config.port == 7002 and not from_file.config.rtc.use_loopback


def test_dev_plan_hands_each_service_only_its_section(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("signaling:\n  max_frame_bytes: 4096\nsfu: {}\n")
    got = plan(tmp_path, "signaling.grpc_port=1234", "room.empty_timeout=5", port=9000, config_file=str(path))
    body, overrides = got.for_service("sfu")
    assert "signaling" not in body and "sfu" in body and body["development"] is True
    assert "signaling.grpc_port=1234" not in overrides and "room.empty_timeout=5" in overrides
    assert "port=9000" in overrides
    _, edge = got.for_service("signaling")
    assert "signaling.grpc_port=1234" in edge
    assert got.sets("signaling.grpc_port") and not got.sets("sfu.nope")
    assert devconfig.service_sections("signaling") == {"signaling"}
    assert devconfig.service_sections("webhook") == {"webhook_service"}


def test_dev_plan_invalid_config_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rtc\.port_range_end"):
        plan(tmp_path, "rtc.port_range_end=1")


def test_dev_plan_sentinel_config_is_not_embedded_and_the_dev_set_is_handed_on(tmp_path: Path) -> None:
    external = plan(tmp_path, "redis.sentinel_master_name=m", "redis.sentinel_addresses=[s1:26379]")
    assert not external.embedded_valkey and external.config.redis.uses_sentinel
    got = plan(tmp_path)
    got.use_redis_sentinel(
        {"sentinel_master_name": "parley", "sentinel_addresses": ["127.0.0.1:1"]}, "127.0.0.1:2"
    )
    body, _ = got.for_service("room-state")
    assert (
        body["redis"]["sentinel_addresses"] == ["127.0.0.1:1"] and body["redis"]["address"] == "127.0.0.1:2"
    )
    assert got.config.redis.uses_sentinel and got.config.redis.sentinel_master_name == "parley"
