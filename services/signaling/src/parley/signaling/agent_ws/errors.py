"""Why a worker connection is refused or closed."""

from __future__ import annotations


class AgentWsError(Exception):
    """Root of /agent errors."""


class RelayUnavailable(AgentWsError):
    """No dispatch instance answered for this connection."""


class RegisterTimeout(AgentWsError):
    """The worker sent no register frame in time."""
