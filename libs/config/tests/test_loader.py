"""Config layering (defaults < YAML < env < CLI), livekit.yaml keys, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field

from parley.config import DEV_API_KEY, DEV_API_SECRET, ConfigError, ParleyConfig, load_config
from parley.config.loader import NON_CONFIG_ENV

pytestmark = pytest.mark.unit

LONG = "s" * 32


def test_defaults() -> None:
    config = load_config(ParleyConfig, env={})
    assert config.port == 7880
    assert config.nats.url == "nats://127.0.0.1:4222"
    assert config.redis.address == "127.0.0.1:6379" and config.redis.url == "redis://127.0.0.1:6379/0"
    assert config.rtc.port_range_start == 50000 and not config.rtc.use_loopback
    assert config.room.auto_create and config.room.empty_timeout == 300
    assert config.keys == {} and not config.development and config.log_json


def test_file_then_env_then_cli(tmp_path: Path) -> None:
    path = tmp_path / "livekit.yaml"
    path.write_text("port: 7001\nregion: eu\nrtc:\n  port_range_start: 51000\n  port_range_end: 52000\n")
    env = {"PARLEY_PORT": "7002", "PARLEY_RTC_PORT_RANGE_END": "53000"}
    config = load_config(ParleyConfig, config_file=str(path), env=env, overrides=["port=7003"])
    assert config.port == 7003  # CLI over env over file
    assert config.rtc.port_range_end == 53000  # env over file
    assert config.rtc.port_range_start == 51000  # file over defaults
    assert config.region == "eu"
    assert config.rtc.packet_cache_size == 512  # default where nobody says otherwise
    assert load_config(ParleyConfig, config_file=str(path), env=env).port == 7002
    assert load_config(ParleyConfig, config_file=str(path), env={}).port == 7001


def test_file_from_env_var(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("room:\n  max_participants: 5\n")
    config = load_config(ParleyConfig, env={"PARLEY_CONFIG_FILE": str(path)})
    assert config.room.max_participants == 5


def test_body_in_parley_config_then_env_then_cli() -> None:
    env = {
        "PARLEY_CONFIG": "nats:\n  url: nats://body:4222\nroom:\n  empty_timeout: 11\n  departure_timeout: 3\n",
        "PARLEY_ROOM_EMPTY_TIMEOUT": "22",
    }
    config = load_config(ParleyConfig, env=env, overrides=["room.departure_timeout=4"])
    assert config.nats.url == "nats://body:4222"
    assert config.room.empty_timeout == 22
    assert config.room.departure_timeout == 4


def test_env_names_resolve_nested_keys_with_underscores() -> None:
    env = {
        "PARLEY_RTC_USE_LOOPBACK": "true",
        "PARLEY_TURN_CREDENTIAL_TTL": "60",
        "PARLEY_LOGGING_JSON_OUTPUT": "false",
        "PARLEY_NATS_URL": "nats://a:1,nats://b:2",
        "PARLEY_RTC_STUN_SERVERS": "[stun:stun.example.org:3478]",
    }
    config = load_config(ParleyConfig, env=env)
    assert config.rtc.use_loopback is True
    assert config.turn.credential_ttl == 60
    assert config.logging.json_output is False and not config.log_json
    assert config.nats.url == "nats://a:1,nats://b:2"
    assert config.rtc.stun_servers == ["stun:stun.example.org:3478"]


def test_livekit_yaml_layout(tmp_path: Path) -> None:
    path = tmp_path / "livekit.yaml"
    path.write_text(
        f"""
port: 7880
region: us-east
keys:
  APIabc: {LONG}
rtc:
  port_range_start: 50000
  port_range_end: 60000
  node_ip: 10.0.0.5
redis:
  address: redis.internal:6379
  db: 2
  username: parley
  password: pw
  use_tls: true
room:
  auto_create: false
  empty_timeout: 600
  departure_timeout: 30
  max_participants: 50
webhook:
  api_key: APIabc
  urls: [https://hooks.example.org/lk]
turn:
  enabled: true
  secret: turn-secret
  servers:
    - host: turn.example.org
      port: 3478
      tls_port: 5349
      transports: [udp, tcp, tls]
"""
    )
    config = load_config(ParleyConfig, config_file=str(path), env={})
    assert config.keys == {"APIabc": LONG}
    assert config.rtc.node_ip == "10.0.0.5"
    assert config.redis.url == "rediss://parley:pw@redis.internal:6379/2"
    assert not config.room.auto_create and config.room.max_participants == 50
    assert config.webhook.urls == ["https://hooks.example.org/lk"]
    assert config.turn.servers[0].transports == ["udp", "tcp", "tls"]
    assert config.region == "us-east"


@pytest.mark.parametrize(
    ("overrides", "env", "key"),
    [
        (["rtc.port_range_start=abc"], {}, "rtc.port_range_start"),
        (["rtc.nope=1"], {}, "rtc.nope"),
        (["portt=1"], {}, "portt"),
        ([], {"PARLEY_ROOM_EMPTY_TIMEOUT": "-1"}, "room.empty_timeout"),
        (["logging.level=loud"], {}, "logging.level"),
        (["turn.servers=[{port: 1}]"], {}, "turn.servers.0.host"),
        (["rtc.port_range_start=2000", "rtc.port_range_end=1500"], {}, "rtc"),
        (["webhook.api_key=nobody", "development=true"], {}, "webhook.api_key"),
    ],
)
def test_invalid_config_names_the_key(overrides: list[str], env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(ParleyConfig, env=env, overrides=overrides)
    assert key in str(err.value)


def test_bad_sources_name_themselves(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config_file"):
        load_config(ParleyConfig, config_file=str(tmp_path / "missing.yaml"), env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("port: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config(ParleyConfig, config_file=str(bad), env={})
    with pytest.raises(ConfigError, match="PARLEY_CONFIG"):
        load_config(ParleyConfig, env={"PARLEY_CONFIG": "- a list"})
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        load_config(ParleyConfig, env={}, overrides=["port"])


def test_short_secrets_refused_outside_development() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(ParleyConfig, env={}, overrides=["keys={APIk: short}"])
    assert "keys.APIk" in str(err.value) and "32" in str(err.value)
    with pytest.raises(ConfigError):
        load_config(ParleyConfig, env={}, overrides=[f"keys={{APIk: {LONG[:-1]}}}"])
    assert load_config(ParleyConfig, env={}, overrides=[f"keys={{APIk: {LONG}}}"]).keys == {"APIk": LONG}
    dev = load_config(ParleyConfig, env={}, overrides=["development=true", "keys={APIk: short}"])
    assert dev.keys == {"APIk": "short"}


def test_development_defaults_to_devkey() -> None:
    config = load_config(ParleyConfig, env={"PARLEY_DEVELOPMENT": "true"})
    assert config.keys == {DEV_API_KEY: DEV_API_SECRET}
    assert not config.log_json


def test_livekit_keys_single_pair() -> None:
    config = load_config(ParleyConfig, env={"LIVEKIT_KEYS": f"APIone: {LONG}"})
    assert config.keys == {"APIone": LONG}


def test_livekit_keys_yaml_lines_and_parley_keys() -> None:
    config = load_config(ParleyConfig, env={"LIVEKIT_KEYS": f"APIone: {LONG}\nAPItwo: {LONG}x"})
    assert config.keys == {"APIone": LONG, "APItwo": LONG + "x"}
    # PARLEY_KEYS is the Parley spelling of the same thing and wins over LIVEKIT_KEYS
    both = load_config(ParleyConfig, env={"LIVEKIT_KEYS": f"APIone: {LONG}", "PARLEY_KEYS": f"APIp: {LONG}"})
    assert both.keys == {"APIp": LONG}


def test_livekit_keys_refused_when_short_outside_development() -> None:
    with pytest.raises(ConfigError, match=r"keys\.APIone"):
        load_config(ParleyConfig, env={"LIVEKIT_KEYS": "APIone: short"})


def test_livekit_keys_comma_separated_pairs() -> None:
    config = load_config(ParleyConfig, env={"LIVEKIT_KEYS": f"APIone: {LONG}, APItwo: {LONG}x"})
    assert config.keys == {"APIone": LONG, "APItwo": LONG + "x"}


class _EdgeSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grpc_port: int = 7890


class _EdgeConfig(ParleyConfig):
    """A service model with a section of its own, like the edge's ``signaling``."""

    signaling: _EdgeSection = Field(default_factory=_EdgeSection)


@pytest.mark.parametrize(
    "name",
    ["PARLEY_NOT_A_KEY", "PARLEY_RTC_PORT_RANGE_BEGIN", "PARLEY_NAT_URL", "PARLEY_SIGNALING_GRPC_PROT"],
)
def test_unknown_env_variable_is_refused_with_its_name(name: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        load_config(_EdgeConfig, env={name: "1"})
    assert caught.value.key == name


def test_non_config_env_variables_are_allowed() -> None:
    env = {name: "x" for name in NON_CONFIG_ENV if name not in ("PARLEY_CONFIG", "PARLEY_CONFIG_FILE")}
    env["PARLEY_CONFIG"] = "port: 7001\n"
    assert {"PARLEY_AGENTS_PYTHON", "PARLEY_DEV_TEST_MARKER"} <= set(env)
    assert load_config(ParleyConfig, env=env).port == 7001


def test_other_services_env_sections_are_left_to_them() -> None:
    # one environment feeds every service: the edge's key is not the concern of room-state,
    # and a typo inside a section is caught by the service owning it
    env = {"PARLEY_SIGNALING_GRPC_PORT": "7999", "PARLEY_WEBHOOK_SERVICE_PARTITIONS": "4"}
    assert load_config(ParleyConfig, env=env).port == 7880
    assert load_config(_EdgeConfig, env=env).signaling.grpc_port == 7999
    with pytest.raises(ConfigError, match="PARLEY_SIGNALING_GRPC_PROT"):
        load_config(_EdgeConfig, env={**env, "PARLEY_SIGNALING_GRPC_PROT": "1"})
    assert load_config(_EdgeConfig, env={"PARLEY_WEBHOOK_URLS": "[]"}).webhook.urls == []
