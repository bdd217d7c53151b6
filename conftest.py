"""Shared pytest setup: real nats-server and Valkey fixtures for every test directory."""

pytest_plugins = ["parley.testing.fixtures"]
