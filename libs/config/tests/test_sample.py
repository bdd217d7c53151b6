"""deploy/livekit.sample.yaml loads in every service and documents every key of every config tree."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel

from parley.config import ParleyConfig, load_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "deploy" / "livekit.sample.yaml"


def service_models() -> dict[str, type[ParleyConfig]]:
    """Each service's config class, found from services/*/pyproject.toml (no service is named here)."""
    models: dict[str, type[ParleyConfig]] = {}
    for pyproject in sorted(ROOT.glob("services/*/pyproject.toml")):
        module_name = tomllib.loads(pyproject.read_text())["tool"]["uv"]["build-backend"]["module-name"]
        try:
            module = importlib.import_module(f"{module_name}.config")
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, ParleyConfig) and value is not ParleyConfig:
                models[pyproject.parent.name] = value
    return models


def own_sections(model: type[ParleyConfig]) -> set[str]:
    return set(model.model_fields) - set(ParleyConfig.model_fields)


def missing_keys(model: type[BaseModel], data: Any, prefix: str = "") -> list[str]:
    """Dotted fields of ``model`` that ``data`` does not spell out (lists: their first item)."""
    if not isinstance(data, dict):
        return [prefix.rstrip(".") or "<root>"]
    missing = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if name not in data:
            missing.append(key)
            continue
        nested = field.annotation
        item_types = [a for a in get_args(nested) if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            missing += missing_keys(nested, data[name], key + ".")
        elif item_types and isinstance(data[name], list):
            if not data[name]:
                missing.append(f"{key}[0] (give one example item)")
            else:
                missing += missing_keys(item_types[0], data[name][0], f"{key}[0].")
    return missing


def test_there_are_services_to_check() -> None:
    assert "signaling" in service_models()


def test_sample_documents_every_shared_key() -> None:
    data = yaml.safe_load(SAMPLE.read_text())
    assert missing_keys(ParleyConfig, data) == []


@pytest.mark.parametrize("service", sorted(service_models()))
def test_sample_documents_and_loads_for_each_service(service: str) -> None:
    model = service_models()[service]
    data = yaml.safe_load(SAMPLE.read_text())
    assert missing_keys(model, data) == []
    config = load_config(model, config_file=str(SAMPLE), env={})  # the one file, as is
    assert not config.development and config.port == 7880
    assert len(next(iter(config.keys.values()))) >= 32


def test_sample_has_no_unknown_top_level_keys() -> None:
    data = yaml.safe_load(SAMPLE.read_text())
    known = set(ParleyConfig.model_fields).union(*(own_sections(m) for m in service_models().values()))
    assert set(data) - known == set()
