"""The public names of ``parley.bus``: what every service imports to talk to the others."""

from __future__ import annotations

import pytest

import parley.bus
from parley.bus import Bus, MemoryBus, NatsBus

pytestmark = pytest.mark.unit


def test_public_names() -> None:
    assert sorted(parley.bus.__all__) == [
        "Binding",
        "Bus",
        "BusError",
        "Delivery",
        "DurablePublisher",
        "ErrorCode",
        "Handler",
        "MemoryBus",
        "NatsBus",
        "NoResponders",
        "Rpc",
        "RpcError",
        "RpcTimeout",
        "Scope",
        "Subscription",
        "Topic",
        "bind",
        "connect",
        "rpcs",
        "serve_all",
        "subjects",
        "topics",
    ]
    for name in parley.bus.__all__:
        assert getattr(parley.bus, name) is not None


def test_both_buses_implement_the_protocol() -> None:
    """Checked by mypy: a NatsBus and a MemoryBus are each a ``Bus``."""
    buses: list[type[Bus]] = [NatsBus, MemoryBus]
    assert [b.__name__ for b in buses] == ["NatsBus", "MemoryBus"]
