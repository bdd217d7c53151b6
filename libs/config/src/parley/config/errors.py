"""Errors raised while loading configuration."""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration is invalid. ``key`` names the offending dotted key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"invalid config key {key!r}: {message}")
        self.key = key
        self.message = message
