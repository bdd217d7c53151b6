"""The public names of ``parley.devprocs``: what `parley dev`, the tests and the benches launch with."""

from __future__ import annotations

import pytest

import parley.devprocs

pytestmark = pytest.mark.unit


def test_public_names() -> None:
    assert sorted(parley.devprocs.__all__) == [
        "ManagedProcess",
        "NatsServer",
        "ProcessError",
        "READY_SERVICES",
        "SERVICES",
        "SeaweedS3",
        "TEST_SERVICES",
        "ValkeySentinelSet",
        "ValkeyServer",
        "free_port",
        "service_process",
        "wait_for_http",
    ]
    for name in parley.devprocs.__all__:
        assert getattr(parley.devprocs, name) is not None
