"""Errors of the process launchers."""

from __future__ import annotations


class ProcessError(RuntimeError):
    """A real component could not start."""
