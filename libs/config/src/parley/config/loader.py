"""Build a config tree from defaults, YAML, environment variables and CLI overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from parley.config.errors import ConfigError
from parley.config.sections import SERVICE_SECTIONS

ENV_PREFIX = "PARLEY_"
NON_CONFIG_ENV = frozenset(
    {
        "PARLEY_CONFIG",  # the whole YAML body (yaml_source)
        "PARLEY_CONFIG_FILE",  # the YAML file (yaml_source)
        "PARLEY_AGENTS_PYTHON",  # make test / make bench: the interpreter of .venv-agents
        "PARLEY_DEV_TEST_MARKER",  # tests/integration/test_dev.py tags every process parley dev starts
        "PARLEY_NODE_IP",  # deploy/compose: docker compose substitutes it into PARLEY_RTC_NODE_IP
    }
)
"""``PARLEY_*`` variables that are not config keys; every other ``PARLEY_*`` must name a key."""
C = TypeVar("C", bound=BaseModel)


def load_config(
    model: type[C],
    *,
    config_file: str | None = None,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> C:
    """Load ``model`` from every source. ``overrides`` are ``section.key=value`` strings."""
    environ = os.environ if env is None else env
    data: dict[str, Any] = {}
    deep_merge(data, yaml_source(config_file, environ))
    deep_merge(data, _env_source(model, environ))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(item, "an override must look like section.key=value")
        _set_path(data, key.strip().split("."), yaml.safe_load(raw) if raw else "")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        key = ".".join(str(p) for p in first["loc"]) or message.split(":")[0]
        raise ConfigError(key or "<root>", message) from exc


def yaml_source(config_file: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """The YAML layer: ``config_file``, else ``PARLEY_CONFIG_FILE``, else the body in ``PARLEY_CONFIG``."""
    path = config_file or environ.get(f"{ENV_PREFIX}CONFIG_FILE")
    body: str | None = None
    origin = "PARLEY_CONFIG"
    if path:
        try:
            body = Path(path).read_text()
        except OSError as exc:
            raise ConfigError("config_file", f"cannot read {path}: {exc.strerror}") from exc
        origin = path
    elif environ.get(f"{ENV_PREFIX}CONFIG"):
        body = environ[f"{ENV_PREFIX}CONFIG"]
    if body is None:
        return {}
    try:
        loaded = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise ConfigError(origin, f"not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(origin, "the YAML document must be a mapping")
    return loaded


def _env_source(model: type[BaseModel], environ: Mapping[str, str]) -> dict[str, Any]:
    """``PARLEY_<SECTION>_<KEY>=value``: the longest matching field name wins at each level.

    A name that is no key is refused (naming it), like a YAML typo, unless it is in
    ``NON_CONFIG_ENV`` or belongs to another service's section (that service checks it).
    """
    data: dict[str, Any] = {}
    if keys := environ.get("LIVEKIT_KEYS"):
        data["keys"] = _parse_keys(keys)
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NON_CONFIG_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        path = _resolve(model, rest)
        if path is None:
            if _other_service_section(model, rest):
                continue
            raise ConfigError(name, f"no config key is named {name} (a typo? see deploy/livekit.sample.yaml)")
        value: Any = _parse_keys(raw) if path == ["keys"] else yaml.safe_load(raw) if raw else ""
        _set_path(data, path, value)
    return data


def _resolve(model: type[BaseModel], rest: str) -> list[str] | None:
    fields = sorted(model.model_fields, key=len, reverse=True)
    for field in fields:
        if rest == field:
            return [field]
        if rest.startswith(field + "_"):
            annotation = model.model_fields[field].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                sub = _resolve(annotation, rest[len(field) + 1 :])
                if sub is not None:
                    return [field, *sub]
    return None


def _other_service_section(model: type[BaseModel], rest: str) -> bool:
    """Whether ``rest`` (``<section>_<key>``, lower case) is in a service section ``model`` lacks."""
    return any(
        section not in model.model_fields and (rest == section or rest.startswith(section + "_"))
        for section in SERVICE_SECTIONS
    )


def _parse_keys(raw: str) -> dict[str, str]:
    """``"key1: secret1, key2: secret2"`` or YAML mapping text."""
    lines = [part.strip() for line in raw.splitlines() for part in line.split(",")]
    text = "\n".join(line for line in lines if line)
    loaded = yaml.safe_load(text) if text else {}
    if not isinstance(loaded, dict):
        raise ConfigError("keys", "expected 'key: secret' pairs")
    return {str(k): str(v) for k, v in loaded.items()}


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` in place (nested mappings key by key, other values replace)
    and return ``base``. Values of ``extra`` are not copied."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base
