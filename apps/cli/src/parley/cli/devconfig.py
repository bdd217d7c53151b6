"""What ``parley dev`` hands every service: one config body, one list of overrides.

The body is the dev defaults with the user's YAML (``--config``, ``PARLEY_CONFIG_FILE`` or
``PARLEY_CONFIG``) merged on top; it reaches each service as ``PARLEY_CONFIG``. The command's
flags and ``--set`` items become the services' ``--set`` overrides, and ``PARLEY_*`` env vars
are inherited, so the layering is the one every service applies on its own.
"""

from __future__ import annotations

import copy
import importlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ConfigDict

from parley.config import ParleyConfig, deep_merge, load_config, yaml_source
from parley.config.sections import RedisConfig, TurnConfig
from parley.devprocs.processes import SERVICES

EMBEDDED = "embedded"
"""Placeholder for nats.url / redis.address: still there after layering = start our own."""

DEV_DEFAULTS: dict[str, Any] = {
    "development": True,
    "rtc": {"use_loopback": True},
    "logging": {"json_output": False},
    "nats": {"url": EMBEDDED},
    "redis": {"address": EMBEDDED},
}


class SharedView(ParleyConfig):
    """The shared sections only: each service validates its own section when it starts."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)


@dataclass
class DevPlan:
    body: dict[str, Any]
    overrides: list[str]
    config: SharedView
    env: dict[str, str] = field(default_factory=dict)

    @property
    def embedded_nats(self) -> bool:
        return self.config.nats.url == EMBEDDED

    @property
    def embedded_valkey(self) -> bool:
        """No Redis given: neither redis.address nor Sentinel (redis.sentinel_addresses)."""
        return self.config.redis.address == EMBEDDED and not self.config.redis.uses_sentinel

    def sets(self, key: str) -> bool:
        """Whether the user chose ``key`` (dotted) in the body, an override or the environment."""
        node: Any = self.body
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return True
        if any(item.split("=", 1)[0].strip() == key for item in self.overrides):
            return True
        return "PARLEY_" + key.replace(".", "_").upper() in self.env

    def for_service(
        self, service: str, services: Sequence[str] = SERVICES
    ) -> tuple[dict[str, Any], list[str]]:
        """The body and overrides without the sections of the other services.

        Each service's model refuses unknown top-level keys, so ``signaling.grpc_port`` must
        reach the edge only.
        """
        own = service_sections(service)
        foreign = set().union(*(service_sections(s) for s in services)) - own
        body = {k: v for k, v in self.body.items() if k not in foreign}
        overrides = [o for o in self.overrides if o.split("=", 1)[0].strip().split(".")[0] not in foreign]
        return body, overrides

    def use_nats(self, url: str) -> None:
        self.body.setdefault("nats", {})["url"] = url
        self.config.nats.url = url

    def use_turn(self, turn: dict[str, Any]) -> None:
        """Point turn-alloc at the dev coturn (``Coturn.turn_section()``)."""
        self.body.setdefault("turn", {}).update(turn)
        self.config.turn = TurnConfig.model_validate({**self.config.turn.model_dump(), **turn})

    def use_redis(self, address: str) -> None:
        self.body.setdefault("redis", {})["address"] = address
        self.config.redis.address = address

    def use_redis_sentinel(self, section: Mapping[str, Any], primary: str) -> None:
        """Point every service at the dev Sentinel set (``ValkeySentinelSet.redis_section()``);
        ``address`` is the first primary, for show (Sentinel names the primary from then on)."""
        redis = {**section, "address": primary}
        self.body.setdefault("redis", {}).update(redis)
        self.config.redis = RedisConfig.model_validate({**self.config.redis.model_dump(), **redis})


def service_sections(service: str) -> set[str]:
    """Top-level keys a service's config adds to the shared ones (``signaling`` for the edge)."""
    try:
        module = importlib.import_module(f"parley.{service.replace('-', '_')}.config")
    except ModuleNotFoundError:
        return set()
    shared = set(ParleyConfig.model_fields)
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, ParleyConfig) and value is not ParleyConfig:
            return set(value.model_fields) - shared
    return set()


def plan(
    *,
    config_file: str | None,
    port: int | None,
    nats_url: str | None,
    redis_address: str | None,
    sets: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> DevPlan:
    """Layer the sources and validate the shared sections (raises ConfigError naming the key)."""
    environ = dict(os.environ if env is None else env)
    body = deep_merge(copy.deepcopy(DEV_DEFAULTS), yaml_source(config_file, environ))
    overrides: list[str] = []
    if port is not None:
        overrides.append(f"port={port}")
    if nats_url:
        overrides.append(f"nats.url={nats_url}")
    if redis_address:
        overrides.append(f"redis.address={redis_address}")
    overrides += list(sets)
    child_env = {k: v for k, v in environ.items() if k not in ("PARLEY_CONFIG", "PARLEY_CONFIG_FILE")}
    view_env = {**child_env, "PARLEY_CONFIG": yaml.safe_dump(body)}
    config = load_config(SharedView, overrides=overrides, env=view_env)
    return DevPlan(body=body, overrides=overrides, config=config, env=child_env)
