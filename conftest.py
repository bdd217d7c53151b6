"""Shared pytest setup: real nats-server and Valkey fixtures for every test directory, and every
test file declares what it is (``pytestmark = pytest.mark.unit`` or ``...integration``), so
``make test-unit`` (``-m "not integration"``) runs exactly the tests with no external processes."""

from __future__ import annotations

import pytest

pytest_plugins = ["parley.testing.fixtures"]

CATEGORIES = ("unit", "integration")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = sorted(
        {
            item.nodeid.split("::")[0]
            for item in items
            if not any(item.get_closest_marker(m) for m in CATEGORIES)
        }
    )
    if unmarked:
        raise pytest.UsageError(
            "test files without a category marker (add `pytestmark = pytest.mark.unit` or "
            "`pytest.mark.integration`): " + ", ".join(unmarked)
        )
