"""Errors of the SFU session layer."""

from __future__ import annotations


class SfuError(Exception):
    """Root of session-layer errors."""


class SessionClosed(SfuError):
    """The participant's session is gone."""


class NegotiationError(SfuError):
    """An SDP could not be applied."""
