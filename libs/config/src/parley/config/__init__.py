"""Typed, layered configuration shared by every Parley service.

Sources, lowest first: code defaults < a YAML file (``--config FILE`` or
``PARLEY_CONFIG_FILE``) or the whole YAML body in ``PARLEY_CONFIG`` < environment
variables ``PARLEY_<SECTION>_<KEY>`` < CLI flags (``--set section.key=value``).
The YAML layout follows LiveKit's livekit.yaml where a key exists there.
"""

from parley.config.errors import ConfigError
from parley.config.loader import deep_merge, load_config, yaml_source
from parley.config.sections import (
    DEV_API_KEY,
    DEV_API_SECRET,
    LoggingConfig,
    NatsConfig,
    ParleyConfig,
    RedisConfig,
    RoomConfig,
    RtcConfig,
    TurnConfig,
    TurnServerConfig,
    WebhookConfig,
)

__all__ = [
    "DEV_API_KEY",
    "DEV_API_SECRET",
    "ConfigError",
    "LoggingConfig",
    "NatsConfig",
    "ParleyConfig",
    "RedisConfig",
    "RoomConfig",
    "RtcConfig",
    "TurnConfig",
    "TurnServerConfig",
    "WebhookConfig",
    "deep_merge",
    "load_config",
    "yaml_source",
]
